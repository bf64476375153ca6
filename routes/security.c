/* A route's security keys: its issuer, the SMART scopes it needs, where its patient is, its
 * rate limit and whether it is audited. */
#include "routes/security.h"

#include <stdlib.h>
#include <string.h>

#include "auth/issuer.h"
#include "auth/scope.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/ratelimit.h"
#include "routes/table.h"
#include "routes/table_internal.h"

#define SCOPES_MAX       16
#define RATE_CLIENTS     10000 /* clients a route's buckets hold at once, by default */
#define RATE_CLIENTS_MAX 1000000

const char *const tg_route_security_keys[] = {
    "auth", "scopes", "patient_param", "audit", "rate_limit", NULL,
};

static const char *const rate_keys[] = {"per_second", "burst", "by", "clients", NULL};

/* The scopes' texts live after the array, in the same allocation: one free. */
static int load_scopes(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                       struct tg_policy *p)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX], quoted[96];
    json_t *arr = NULL;
    struct tg_scope *s;
    size_t text = 0, n;
    char *at;
    int rc = tg_conf_get_json(ctx, v, jpath, "scopes", JSON_ARRAY, false, &arr);

    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "scopes");
    n = json_array_size(arr);
    if (n == 0 || n > SCOPES_MAX) {
        return tg_conf_error(ctx, path, "expected 1 to %d scopes", SCOPES_MAX);
    }
    if (p->auth == NULL) {
        return tg_conf_error(ctx, path, "scopes need \"auth\" on the route");
    }
    for (size_t i = 0; i < n; i++) {
        text += json_string_length(json_array_get(arr, i)) + 1;
    }
    s = calloc(1, n * sizeof(*s) + text);
    if (s == NULL) {
        return TG_ENOMEM;
    }
    p->scopes = s;
    at = (char *)(s + n);
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(arr, i));
        size_t len = t != NULL ? strlen(t) : 0;
        tg_jpos_path_index(ipath, sizeof(ipath), path, i);
        if (t != NULL) {
            memcpy(at, t, len + 1);
        }
        if (t == NULL || tg_scope_parse(at, len, &s[i]) != TG_OK) {
            return tg_conf_error(ctx, ipath,
                                 "bad SMART scope %s: expected (patient|user|system)/"
                                 "(Type|*).(read|write|*|cruds letters)[?query]",
                                 tg_jpos_quote(quoted, sizeof(quoted), t != NULL ? t : "?"));
        }
        at += len + 1;
        p->n_scopes = i + 1;
    }
    return TG_OK;
}

/* "patient_param": a parameter of the path; needed by patient/ scopes. */
static int load_patient(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_route *r)
{
    char path[TG_JPATH_MAX];
    const char *name = NULL;
    const struct tg_seg *seg;
    bool patient_scope = false;
    int rc = tg_conf_get_str(ctx, v, jpath, "patient_param", false, &name);

    if (rc != TG_OK) {
        return rc;
    }
    for (size_t i = 0; i < r->policy.n_scopes; i++) {
        patient_scope |= r->policy.scopes[i].ctx == TG_SCOPE_PATIENT;
    }
    seg = tg_route_find_param(r, name != NULL ? name : "patient",
                              strlen(name != NULL ? name : "patient"));
    if (seg == NULL && (name != NULL || patient_scope)) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "path"),
                             "the path has no parameter {%s}%s", name != NULL ? name : "patient",
                             name != NULL ? " (patient_param)"
                                          : ": a patient/ scope binds the request to the "
                                            "token's patient, named there");
    }
    r->policy.patient_param = seg != NULL ? seg->text : NULL;
    return TG_OK;
}

static int load_rate(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                     struct tg_policy *p)
{
    char path[TG_JPATH_MAX], quoted[96];
    json_t *o = NULL;
    unsigned rate = 0, burst = 0, clients = RATE_CLIENTS;
    const char *by = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "rate_limit", JSON_OBJECT, false, &o);

    if (rc != TG_OK || o == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "rate_limit");
    rc = tg_conf_check_keys(ctx, o, path, rate_keys);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, o, path, "per_second", 1, TG_RATELIMIT_RATE_MAX, &rate);
    if (rc == TG_OK && rate == 0) {
        rc = tg_conf_error(ctx, path, "per_second is required");
    }
    burst = rate;
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, o, path, "burst", 1, TG_RATELIMIT_BURST_MAX, &burst);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, o, path, "clients", 1, RATE_CLIENTS_MAX, &clients);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, o, path, "by", false, &by);
    if (rc != TG_OK) {
        return rc;
    }
    if (by != NULL && strcmp(by, "client") != 0 && strcmp(by, "subject") != 0) {
        tg_jpos_path_key(path, sizeof(path), path, "by");
        return tg_conf_error(ctx, path, "expected \"subject\" or \"client\", got %s",
                             tg_jpos_quote(quoted, sizeof(quoted), by));
    }
    if (by != NULL && strcmp(by, "subject") == 0 && p->auth == NULL) {
        return tg_conf_error(ctx, path, "rate limits by subject need \"auth\" on the route");
    }
    /* The token's subject when the route has auth, unless told otherwise. */
    p->rate_by_client = p->auth == NULL || (by != NULL && strcmp(by, "client") == 0);
    p->rate_limit = tg_ratelimit_new(rate, burst, clients);
    return p->rate_limit != NULL ? TG_OK : TG_ENOMEM;
}

int tg_route_load_security(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                           const struct tg_conf *conf, struct tg_route *r)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *issuer = NULL;
    int rc = tg_conf_get_str(ctx, v, jpath, "auth", false, &issuer);

    if (rc == TG_OK && issuer != NULL) {
        r->policy.auth = (struct tg_auth_issuer *)tg_auth_issuer_get(conf->auth, issuer);
        if (r->policy.auth == NULL) {
            return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "auth"),
                                 "unknown issuer %s (see auth.issuers)",
                                 tg_jpos_quote(quoted, sizeof(quoted), issuer));
        }
    }
    rc = rc != TG_OK ? rc : load_scopes(ctx, jpath, v, &r->policy);
    rc = rc != TG_OK ? rc : load_patient(ctx, jpath, v, r);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, v, jpath, "audit", &r->policy.audit);
    if (rc == TG_OK && r->policy.audit && conf->audit_file == NULL) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "audit"),
                             "audited routes need the conf's audit.file");
    }
    return rc != TG_OK ? rc : load_rate(ctx, jpath, v, &r->policy);
}

void tg_route_security_cleanup(struct tg_policy *p)
{
    free((void *)p->scopes);
    p->scopes = NULL;
    tg_ratelimit_free(p->rate_limit);
    p->rate_limit = NULL;
}
