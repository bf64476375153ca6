#ifndef TG_AUTH_SCOPE_H
#define TG_AUTH_SCOPE_H

/* SMART on FHIR scopes (App Launch 2.x, "Scopes and Launch Context"): v1
 * "patient/Observation.read" and v2 "patient/Observation.rs?category=...", parsed into what
 * they allow, and a route's needs checked against a token's grants. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define TG_SCOPE_TYPE_MAX 64 /* a FHIR resource type name */

enum tg_scope_ctx {
    TG_SCOPE_PATIENT = 1, /* the patient in the token's launch context */
    TG_SCOPE_USER = 2,    /* what the signed-in user may see */
    TG_SCOPE_SYSTEM = 3,  /* a backend service */
};

/* Interactions, v2's letters; v1 "read" is r+s, "write" c+u+d, "*" all. */
enum tg_scope_perm {
    TG_SCOPE_C = 1 << 0,
    TG_SCOPE_R = 1 << 1,
    TG_SCOPE_U = 1 << 2,
    TG_SCOPE_D = 1 << 3,
    TG_SCOPE_S = 1 << 4,
};

/* One resource scope. type and query point into the parsed text. */
struct tg_scope {
    enum tg_scope_ctx ctx;
    unsigned perms;
    const char *type; /* "Observation", or "*" */
    size_t type_len;
    const char *query; /* v2 "?category=..." restriction without the '?', or NULL */
    size_t query_len;
};

/* Parses one scope s (len bytes). TG_OK, or TG_EINVAL when it is no resource scope ("openid",
 * "launch/patient", "offline_access" and malformed ones alike). */
int tg_scope_parse(const char *s, size_t len, struct tg_scope *out);

/* Whether have allows everything need asks: same context, the same type (or "*"), every
 * interaction, and no narrower restriction than need's. */
bool tg_scope_grants(const struct tg_scope *have, const struct tg_scope *need);

/* Looks in the token's scopes (the "scope" claim, a space-separated string, or "scp", an array
 * of strings) for one granting any of need[0..n). On success *granted is that scope (pointing
 * into claims), a non-patient one when there is a choice, and true is returned. */
bool tg_scope_find_grant(const json_t *claims, const struct tg_scope *need, size_t n,
                         struct tg_scope *granted);

#endif
