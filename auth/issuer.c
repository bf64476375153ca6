/* Token issuers: the conf's "auth" section, their key sets, and verifying a token with them. */
#include "auth/issuer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jose.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/file.h"
#include "gateway/jsonpos.h"
#include "gateway/loop.h"
#include "gateway/req.h"

#define KEY_FILE_MAX   ((size_t)1 << 20) /* a JWKS or secret file */
#define SKEW_MAX_S     300
#define SKEW_DEFAULT_S 60
#define REFRESH_MIN_S  30
#define REFRESH_DEF_S  600 /* Envoy's remote JWKS cache */
#define SECRET_MIN     32  /* bytes: RFC 7518 3.2 wants a key as long as the hash */
#define AUDIENCES_MAX  16  /* a token names one or two; more is a conf mistake */

static const char *const auth_keys[] = {"issuers", NULL};
static const char *const issuer_keys[] = {
    "issuer",        "audiences",     "algorithms",        "jwks_url",
    "jwks_file",     "secret_file",   "clock_skew_s",      "jwks_refresh_s",
    "patient_claim", "forward_token", "claims_to_headers", NULL,
};

static void issuer_cleanup(struct tg_auth_issuer *is)
{
    free(is->name);
    free(is->iss);
    tg_conf_strs_free(is->audiences, is->n_audiences);
    free(is->jwks_url);
    tg_jwks_unref(is->secret);
    free(is->patient_claim);
    for (size_t i = 0; i < is->n_claim_hdrs; i++) {
        free(is->claim_hdrs[i].claim);
        free(is->claim_hdrs[i].header);
    }
    free(is->claim_hdrs);
    tg_jwks_unref(is->keys);
    pthread_rwlock_destroy(&is->lock);
}

void tg_auth_free(struct tg_auth *auth)
{
    if (auth == NULL) {
        return;
    }
    for (size_t i = 0; i < auth->n; i++) {
        issuer_cleanup(&auth->issuers[i]);
    }
    free(auth->issuers);
    free(auth);
}

/* "algorithms": names of enum tg_jws_alg; default RS256. HS* needs secret_file. */
static int load_algs(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                     struct tg_auth_issuer *is)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX], quoted[96];
    json_t *arr = NULL;
    int rc = tg_conf_get_json(ctx, obj, jpath, "algorithms", JSON_ARRAY, false, &arr);

    is->algs = TG_JWS_RS256;
    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "algorithms");
    is->algs = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        unsigned bit = tg_jws_alg_of(s);
        tg_jpos_path_index(ipath, sizeof(ipath), path, i);
        if (bit == 0) {
            return tg_conf_error(ctx, ipath,
                                 "unknown or refused algorithm %s: expected RS256, RS384, RS512, "
                                 "PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384 or HS512",
                                 tg_jpos_quote(quoted, sizeof(quoted), s != NULL ? s : "?"));
        }
        is->algs |= bit;
    }
    if (is->algs == 0) {
        return tg_conf_error(ctx, path, "at least one algorithm is needed");
    }
    return TG_OK;
}

/* Reads the file named at jpath.key (relative to the conf) into *text. */
static int read_key_file(struct tg_conf_ctx *ctx, const char *jpath, const char *key,
                         const char *name, char **text, size_t *len)
{
    char path[TG_JPATH_MAX], err[512];
    char *file = NULL;
    int rc = tg_conf_resolve_path(ctx->file, name, &file);

    if (rc == TG_OK && tg_file_read(file, KEY_FILE_MAX, text, len, err, sizeof(err)) != TG_OK) {
        rc = tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key), "%s", err);
    }
    free(file);
    return rc;
}

/* secret_file: the HMAC key, at least SECRET_MIN bytes. */
static int load_secret(struct tg_conf_ctx *ctx, const char *jpath, const char *secret,
                       struct tg_auth_issuer *is)
{
    char path[TG_JPATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc = read_key_file(ctx, jpath, "secret_file", secret, &text, &len);

    if (rc == TG_OK && len < SECRET_MIN) {
        rc = tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "secret_file"),
                           "the secret has %zu bytes: at least %d are needed", len, SECRET_MIN);
    }
    rc = rc != TG_OK ? rc : tg_jwks_from_secret((const uint8_t *)text, len, &is->secret);
    free(text);
    return rc;
}

/* jwks_file: the key set, read now. */
static int load_jwks_file(struct tg_conf_ctx *ctx, const char *jpath, const char *file,
                          struct tg_auth_issuer *is)
{
    char path[TG_JPATH_MAX];
    const char *why = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_key_file(ctx, jpath, "jwks_file", file, &text, &len);

    if (rc == TG_OK && tg_jwks_parse(text, len, &is->keys, &why) != TG_OK) {
        rc = tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "jwks_file"), "%s: %s",
                           file, why != NULL ? why : "out of memory");
    }
    free(text);
    return rc;
}

/* Which of jwks_file, jwks_url and secret_file the algorithms need, and no other. */
static int check_key_sources(struct tg_conf_ctx *ctx, const char *jpath, unsigned algs,
                             const char *file, const char *url, const char *secret)
{
    char path[TG_JPATH_MAX];

    if (file != NULL && url != NULL) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "jwks_url"),
                             "jwks_file and jwks_url exclude each other");
    }
    if ((algs & ~TG_JWS_HMAC) != 0 && file == NULL && url == NULL) {
        return tg_conf_error(ctx, jpath, "RS, PS and ES algorithms need jwks_file or jwks_url");
    }
    if ((algs & TG_JWS_HMAC) != 0 && secret == NULL) {
        return tg_conf_error(ctx, jpath, "HS algorithms need a local secret_file");
    }
    if ((algs & TG_JWS_HMAC) == 0 && secret != NULL) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "secret_file"),
                             "secret_file is only for HS256, HS384 or HS512");
    }
    if (url != NULL && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "jwks_url"),
                             "jwks_url must be an http:// or https:// URL");
    }
    return TG_OK;
}

/* jwks_file, jwks_url and secret_file: where the keys come from. */
static int load_keys(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                     struct tg_auth_issuer *is)
{
    const char *file = NULL, *url = NULL, *secret = NULL;
    int rc = tg_conf_get_str(ctx, obj, jpath, "jwks_file", false, &file);

    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, obj, jpath, "jwks_url", false, &url);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, obj, jpath, "secret_file", false, &secret);
    rc = rc != TG_OK ? rc : check_key_sources(ctx, jpath, is->algs, file, url, secret);
    if (rc != TG_OK) {
        return rc;
    }
    if (url != NULL) {
        is->jwks_url = strdup(url);
        return is->jwks_url != NULL ? TG_OK : TG_ENOMEM;
    }
    rc = secret != NULL ? load_secret(ctx, jpath, secret, is) : TG_OK;
    rc = rc == TG_OK && file != NULL ? load_jwks_file(ctx, jpath, file, is) : rc;
    if (rc == TG_OK) {
        atomic_store(&is->ready, true); /* a file's keys, or HMAC alone: ready now */
    }
    return rc;
}

/* "claims_to_headers": {"claim": "Header-Name"}. */
static int load_claim_headers(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                              struct tg_auth_issuer *is)
{
    char path[TG_JPATH_MAX], kpath[TG_JPATH_MAX], quoted[96];
    json_t *map = NULL;
    const char *claim;
    json_t *v;
    int rc = tg_conf_get_json(ctx, obj, jpath, "claims_to_headers", JSON_OBJECT, false, &map);

    if (rc != TG_OK || map == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "claims_to_headers");
    if (json_object_size(map) > TG_AUTH_CLAIM_HEADERS_MAX) {
        return tg_conf_error(ctx, path, "at most %d claims go upstream", TG_AUTH_CLAIM_HEADERS_MAX);
    }
    is->claim_hdrs = calloc(json_object_size(map) + 1, sizeof(*is->claim_hdrs));
    if (is->claim_hdrs == NULL) {
        return TG_ENOMEM;
    }
    json_object_foreach(map, claim, v)
    {
        const char *h = json_string_value(v);
        tg_jpos_path_key(kpath, sizeof(kpath), path, claim);
        if (h == NULL || !tg_conf_is_token(h) || strlen(h) > 64) {
            return tg_conf_error(ctx, kpath, "expected a header name (an HTTP token), got %s",
                                 tg_jpos_quote(quoted, sizeof(quoted), h != NULL ? h : "?"));
        }
        if (strcasecmp(h, "Authorization") == 0 || strcasecmp(h, "Host") == 0) {
            return tg_conf_error(ctx, kpath, "%s cannot carry a claim", h);
        }
        is->claim_hdrs[is->n_claim_hdrs].claim = strdup(claim);
        is->claim_hdrs[is->n_claim_hdrs].header = strdup(h);
        is->n_claim_hdrs++;
        if (is->claim_hdrs[is->n_claim_hdrs - 1].claim == NULL ||
            is->claim_hdrs[is->n_claim_hdrs - 1].header == NULL) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

static int load_issuer(struct tg_conf_ctx *ctx, const char *jpath, const json_t *obj,
                       struct tg_auth_issuer *is)
{
    const char *iss = NULL, *pclaim = "patient";
    int rc;

    is->forward_token = true;
    is->rule.skew_s = SKEW_DEFAULT_S;
    is->refresh_s = REFRESH_DEF_S;
    if (!json_is_object(obj)) {
        return tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(obj));
    }
    rc = tg_conf_check_keys(ctx, obj, jpath, issuer_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, obj, jpath, "issuer", true, &iss);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_strs(ctx, obj, jpath, "audiences", AUDIENCES_MAX, &is->audiences,
                                        &is->n_audiences);
    rc = rc != TG_OK ? rc : load_algs(ctx, obj, jpath, is);
    rc = rc != TG_OK ? rc : load_keys(ctx, obj, jpath, is);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, jpath, "clock_skew_s", 0, SKEW_MAX_S,
                                            &is->rule.skew_s);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, jpath, "jwks_refresh_s", REFRESH_MIN_S, 86400,
                                            &is->refresh_s);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, obj, jpath, "patient_claim", false, &pclaim);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, obj, jpath, "forward_token", &is->forward_token);
    rc = rc != TG_OK ? rc : load_claim_headers(ctx, obj, jpath, is);
    if (rc != TG_OK) {
        return rc;
    }
    is->iss = strdup(iss);
    is->patient_claim = strdup(pclaim);
    if (is->iss == NULL || is->patient_claim == NULL) {
        return TG_ENOMEM;
    }
    is->rule.iss = is->iss;
    is->rule.audiences = (const char *const *)is->audiences;
    is->rule.n_audiences = is->n_audiences;
    return TG_OK;
}

/* Sets up the lock of every issuer slot before any can fail, so cleanup is uniform. */
static struct tg_auth *auth_new(size_t n)
{
    struct tg_auth *a = calloc(1, sizeof(*a));
    pthread_rwlockattr_t attr;

    if (a == NULL) {
        return NULL;
    }
    a->issuers = calloc(n + 1, sizeof(*a->issuers));
    if (a->issuers == NULL) {
        free(a);
        return NULL;
    }
    /* A swap waits for the readers in progress, never behind new ones. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (size_t i = 0; i < n; i++) {
        pthread_rwlock_init(&a->issuers[i].lock, &attr);
        a->issuers[i].owner = a;
    }
    pthread_rwlockattr_destroy(&attr);
    a->n = n;
    return a;
}

int tg_auth_load(struct tg_conf_ctx *ctx, const json_t *auth, struct tg_auth **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    json_t *issuers = NULL;
    struct tg_auth *a = NULL;
    const char *name;
    json_t *v;
    size_t i = 0;
    int rc = TG_OK;

    *out = NULL;
    if (auth == NULL) {
        return TG_OK;
    }
    if (!json_is_object(auth)) {
        return tg_conf_error(ctx, "auth", "expected an object, got %s", tg_conf_type_name(auth));
    }
    rc = tg_conf_check_keys(ctx, auth, "auth", auth_keys);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_json(ctx, auth, "auth", "issuers", JSON_OBJECT, true, &issuers);
    if (rc != TG_OK || issuers == NULL) {
        return rc;
    }
    if (json_object_size(issuers) > TG_AUTH_ISSUERS_MAX) {
        return tg_conf_error(ctx, "auth.issuers", "at most %d issuers", TG_AUTH_ISSUERS_MAX);
    }
    a = auth_new(json_object_size(issuers));
    if (a == NULL) {
        return TG_ENOMEM;
    }
    json_object_foreach(issuers, name, v)
    {
        struct tg_auth_issuer *is = &a->issuers[i++];
        tg_jpos_path_key(path, sizeof(path), "auth.issuers", name);
        if (!tg_conf_is_name(name)) {
            rc = tg_conf_error_key(ctx, path, "bad issuer name %s: expected [A-Za-z0-9_-]",
                                   tg_jpos_quote(quoted, sizeof(quoted), name));
            break;
        }
        is->name = strdup(name);
        rc = is->name == NULL ? TG_ENOMEM : load_issuer(ctx, path, v, is);
        if (rc != TG_OK) {
            break;
        }
        a->claim_headers = a->claim_headers || is->n_claim_hdrs > 0;
    }
    if (rc != TG_OK) {
        tg_auth_free(a);
        return rc;
    }
    *out = a;
    return TG_OK;
}

const struct tg_auth_issuer *tg_auth_issuer_get(const struct tg_auth *auth, const char *name)
{
    for (size_t i = 0; auth != NULL && i < auth->n; i++) {
        if (strcmp(auth->issuers[i].name, name) == 0) {
            return &auth->issuers[i];
        }
    }
    return NULL;
}

bool tg_auth_is_ready(const struct tg_auth *auth)
{
    for (size_t i = 0; auth != NULL && i < auth->n; i++) {
        if (!atomic_load(&auth->issuers[i].ready)) {
            return false;
        }
    }
    return true;
}

void tg_auth_set_keys(struct tg_auth_issuer *iss, struct tg_jwks *keys)
{
    struct tg_jwks *old;

    tg_jwks_ref(keys);
    pthread_rwlock_wrlock(&iss->lock);
    old = iss->keys;
    iss->keys = keys;
    pthread_rwlock_unlock(&iss->lock);
    atomic_store(&iss->ready, keys != NULL);
    tg_jwks_unref(old);
}

void tg_auth_inherit(struct tg_auth *next, const struct tg_auth *prev)
{
    for (size_t i = 0; next != NULL && i < next->n; i++) {
        struct tg_auth_issuer *n = &next->issuers[i];
        struct tg_auth_issuer *p = (struct tg_auth_issuer *)tg_auth_issuer_get(prev, n->name);
        if (n->jwks_url == NULL || p == NULL || p->jwks_url == NULL ||
            strcmp(n->jwks_url, p->jwks_url) != 0) {
            continue;
        }
        pthread_rwlock_rdlock(&p->lock);
        if (p->keys != NULL) {
            tg_auth_set_keys(n, p->keys);
        }
        pthread_rwlock_unlock(&p->lock);
    }
}

bool tg_auth_is_claim_header(const struct tg_auth *auth, const char *name, size_t len)
{
    for (size_t i = 0; auth != NULL && i < auth->n; i++) {
        const struct tg_auth_issuer *is = &auth->issuers[i];
        for (size_t k = 0; k < is->n_claim_hdrs; k++) {
            if (tg_header_name_is(name, len, is->claim_hdrs[k].header)) {
                return true;
            }
        }
    }
    return false;
}

/* An unknown kid: the IdP may have rotated its keys. The refresher is woken once; it fetches
 * when TG_AUTH_KID_REFETCH_US have passed since the last such fetch, and clears the flag. */
static void want_fetch(struct tg_auth_issuer *iss)
{
    struct tg_loop *r;

    if (iss->jwks_url == NULL || atomic_exchange(&iss->want_fetch, true)) {
        return;
    }
    r = atomic_load(&iss->owner->refresher);
    if (r != NULL) {
        tg_loop_wake(r);
    }
}

int tg_auth_verify(struct tg_auth_issuer *iss, const char *token, size_t len, int64_t now_s,
                   json_t **claims, const char **why)
{
    struct tg_jws_result res;
    int rc;

    *claims = NULL;
    if (!atomic_load(&iss->ready)) {
        *why = "no signing keys yet";
        return TG_EOVERLOAD;
    }
    pthread_rwlock_rdlock(&iss->lock);
    rc = tg_jws_verify(token, len, iss->algs, iss->keys, iss->secret, claims, &res);
    pthread_rwlock_unlock(&iss->lock);
    if (rc != TG_OK) {
        if (res.unknown_kid) {
            want_fetch(iss);
        }
        *why = res.why;
        return rc;
    }
    rc = tg_claims_check(*claims, &iss->rule, now_s, why);
    if (rc != TG_OK) {
        json_decref(*claims);
        *claims = NULL;
    }
    return rc;
}
