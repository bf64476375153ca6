#ifndef TG_AUTH_ISSUER_H
#define TG_AUTH_ISSUER_H

/* The conf's "auth" section: the token issuers routes name in their "auth" key, each with its
 * rules and its verification keys. Keys from a jwks_file are read with the conf; keys from a
 * jwks_url are fetched by the refresher (auth/refresh.c) and swapped in while workers verify:
 * the key set is read under a reader lock that only a swap takes for writing. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/claims.h"

#define TG_AUTH_ISSUERS_MAX       16
#define TG_AUTH_CLAIM_HEADERS_MAX 8
#define TG_AUTH_KID_REFETCH_US    30000000u /* an unknown kid refetches at most this often */

struct tg_conf;
struct tg_conf_ctx;
struct tg_jwks;
struct tg_loop;

/* A claim sent upstream as a header. */
struct tg_claim_header {
    char *claim;  /* owned */
    char *header; /* owned */
};

struct tg_auth;

/* One issuer: the rules its tokens meet, and their keys. */
struct tg_auth_issuer {
    char *name;       /* owned: the key in "issuers", what routes name */
    char *iss;        /* owned: the exact "iss" */
    char **audiences; /* owned: "aud" any-of; none = not checked */
    size_t n_audiences;
    unsigned algs;                      /* allowed algorithms (enum tg_jws_alg mask) */
    struct tg_claims_rule rule;         /* borrows iss and audiences */
    char *jwks_url;                     /* owned, or NULL */
    unsigned refresh_s;                 /* jwks_url: seconds between fetches */
    struct tg_jwks *secret;             /* HMAC key from secret_file, or NULL */
    char *patient_claim;                /* owned: claim holding the launch patient */
    bool forward_token;                 /* pass Authorization upstream */
    struct tg_claim_header *claim_hdrs; /* owned */
    size_t n_claim_hdrs;
    struct tg_auth *owner;

    /* The key set: NULL until the first is read or fetched. */
    pthread_rwlock_t lock;
    struct tg_jwks *keys;   /* under lock */
    atomic_bool ready;      /* keys is set */
    atomic_bool want_fetch; /* a token named an unknown kid: fetch again (rate-limited) */

    /* The refresher's own state (its thread only). */
    uint64_t next_fetch_us;
    uint64_t last_kid_fetch_us;
    unsigned failures;
    bool fetching;
};

struct tg_auth {
    struct tg_auth_issuer *issuers; /* owned */
    size_t n;
    bool claim_headers; /* some issuer sets claims_to_headers: client copies are dropped */
    _Atomic(struct tg_loop *) refresher; /* woken when an issuer wants a fetch, or NULL */
};

/* Parses the "auth" section (auth, borrowed, may be NULL: no issuers) of the conf at
 * ctx->file into *out: every issuer's rules, its jwks_file and secret_file read now (relative
 * to the conf's directory). TG_OK, TG_EINVAL with ctx's error set, TG_ENOMEM. */
int tg_auth_load(struct tg_conf_ctx *ctx, const json_t *auth, struct tg_auth **out);

/* Frees what tg_auth_load made (NULL is a no-op). No thread may use it any more. */
void tg_auth_free(struct tg_auth *auth);

/* The issuer called name, or NULL. */
const struct tg_auth_issuer *tg_auth_issuer_get(const struct tg_auth *auth, const char *name);

/* Whether every issuer has keys: /readyz fails until then. NULL auth is ready. */
bool tg_auth_is_ready(const struct tg_auth *auth);

/* After a reload: each issuer of next with the same name and jwks_url as one of prev starts
 * with prev's keys instead of none. Main thread, before next is handed to the workers. */
void tg_auth_inherit(struct tg_auth *next, const struct tg_auth *prev);

/* Whether a request header of that name is set from a claim by some issuer: a client's copy
 * never passes. */
bool tg_auth_is_claim_header(const struct tg_auth *auth, const char *name, size_t len);

/* Verifies a bearer token for iss at now_s (Unix seconds): signature, algorithm, kid, then the
 * claims. On TG_OK *claims is the payload (caller decrefs). TG_EBADTOKEN (*why for the log),
 * TG_EOVERLOAD when the issuer has no keys yet. An unknown kid asks the refresher for a new
 * key set (at most once per TG_AUTH_KID_REFETCH_US). Any worker thread. */
int tg_auth_verify(struct tg_auth_issuer *iss, const char *token, size_t len, int64_t now_s,
                   json_t **claims, const char **why);

/* Swaps in a new key set (a reference is taken) and marks the issuer ready. Any thread. */
void tg_auth_set_keys(struct tg_auth_issuer *iss, struct tg_jwks *keys);

#endif
