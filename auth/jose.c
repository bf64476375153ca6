/* JWS and JWKS with libcjose: key sets parsed once and shared, tokens verified against them. */
#include "auth/jose.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>

#include "gateway/err.h"

#define JWKS_KEYS_MAX 64 /* an IdP publishes a handful; more is a mistake or an attack */
#define KID_MAX       256

struct jwk_entry {
    char *kid;        /* owned, NULL when the key has none */
    cjose_jwk_t *jwk; /* owned */
    unsigned algs;    /* what it may verify */
};

struct tg_jwks {
    atomic_uint refs;
    size_t n;
    struct jwk_entry keys[];
};

static const struct {
    const char *name;
    unsigned bit;
} alg_names[] = {
    {"RS256", TG_JWS_RS256}, {"RS384", TG_JWS_RS384}, {"RS512", TG_JWS_RS512},
    {"PS256", TG_JWS_PS256}, {"PS384", TG_JWS_PS384}, {"PS512", TG_JWS_PS512},
    {"ES256", TG_JWS_ES256}, {"ES384", TG_JWS_ES384}, {"ES512", TG_JWS_ES512},
    {"HS256", TG_JWS_HS256}, {"HS384", TG_JWS_HS384}, {"HS512", TG_JWS_HS512},
};

unsigned tg_jws_alg_of(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(alg_names) / sizeof(alg_names[0]); i++) {
        if (strcmp(name, alg_names[i].name) == 0) {
            return alg_names[i].bit;
        }
    }
    return 0;
}

/* Whether s (len bytes) is base64url text libcjose can decode: its alphabet only, and a length
 * that is not 1 modulo 4. libcjose 0.6.2.1 asserts on that length and would abort the process:
 * everything it decodes is checked here first (found by tests/fuzz/fuzz_jwt.c). */
static bool is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return len % 4 != 1;
}

/* header.payload.signature, each part base64url and none empty. */
static bool is_compact_jws(const char *token, size_t len)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    const char *end = token + len;

    return dot2 != NULL && dot1 > token && dot2 > dot1 + 1 && end > dot2 + 1 &&
           is_b64url(token, (size_t)(dot1 - token)) &&
           is_b64url(dot1 + 1, (size_t)(dot2 - dot1 - 1)) &&
           is_b64url(dot2 + 1, (size_t)(end - dot2 - 1));
}

/* Every base64url member a JWK may have is decodable (see is_b64url). */
static bool jwk_members_ok(const json_t *member)
{
    static const char *const b64[] = {"n", "e", "x", "y", "d", "k", "p", "q", "dp", "dq", "qi"};

    for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
        const json_t *v = json_object_get(member, b64[i]);
        if (v != NULL &&
            (!json_is_string(v) || !is_b64url(json_string_value(v), json_string_length(v)))) {
            return false;
        }
    }
    return true;
}

static struct tg_jwks *jwks_new(size_t n)
{
    struct tg_jwks *k = calloc(1, sizeof(*k) + n * sizeof(k->keys[0]));

    if (k != NULL) {
        atomic_init(&k->refs, 1);
    }
    return k;
}

static void jwks_free(struct tg_jwks *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->keys[i].kid);
        cjose_jwk_release(k->keys[i].jwk);
    }
    free(k);
}

struct tg_jwks *tg_jwks_ref(struct tg_jwks *keys)
{
    if (keys != NULL) {
        atomic_fetch_add_explicit(&keys->refs, 1, memory_order_relaxed);
    }
    return keys;
}

void tg_jwks_unref(struct tg_jwks *keys)
{
    if (keys != NULL && atomic_fetch_sub_explicit(&keys->refs, 1, memory_order_acq_rel) == 1) {
        jwks_free(keys);
    }
}

size_t tg_jwks_count(const struct tg_jwks *keys)
{
    return keys != NULL ? keys->n : 0;
}

/* The algorithms a key of this type and curve may verify, narrowed by its "alg" member. */
static unsigned key_algs(const cjose_jwk_t *jwk, const json_t *member)
{
    cjose_err err;
    const char *alg = json_string_value(json_object_get(member, "alg"));
    unsigned algs = 0;

    switch (cjose_jwk_get_kty(jwk, &err)) {
    case CJOSE_JWK_KTY_RSA:
        /* RSA keys under 2048 bits are refused (RFC 7518 3.3). */
        if (cjose_jwk_get_keysize(jwk, &err) >= 2048) {
            algs = TG_JWS_RS256 | TG_JWS_RS384 | TG_JWS_RS512 | TG_JWS_PS256 | TG_JWS_PS384 |
                   TG_JWS_PS512;
        }
        break;
    case CJOSE_JWK_KTY_EC:
        switch (cjose_jwk_EC_get_curve(jwk, &err)) {
        case CJOSE_JWK_EC_P_256:
            algs = TG_JWS_ES256;
            break;
        case CJOSE_JWK_EC_P_384:
            algs = TG_JWS_ES384;
            break;
        case CJOSE_JWK_EC_P_521:
            algs = TG_JWS_ES512;
            break;
        default:
            break;
        }
        break;
    default:
        break; /* oct: HMAC keys come from a local secret only */
    }
    return alg != NULL ? algs & tg_jws_alg_of(alg) : algs;
}

/* Adds the JWK member of a JWKS to k when it is a usable signature key; skips it otherwise. */
static int add_key(struct tg_jwks *k, json_t *member)
{
    cjose_err err;
    const char *use = json_string_value(json_object_get(member, "use"));
    const char *kid = json_string_value(json_object_get(member, "kid"));
    cjose_jwk_t *jwk;
    unsigned algs;

    if (!json_is_object(member) || (use != NULL && strcmp(use, "sig") != 0) ||
        (kid != NULL && strlen(kid) > KID_MAX) || !jwk_members_ok(member)) {
        return TG_OK;
    }
    jwk = cjose_jwk_import_json((cjose_header_t *)member, &err);
    if (jwk == NULL) {
        return err.code == CJOSE_ERR_NO_MEMORY ? TG_ENOMEM : TG_OK;
    }
    algs = key_algs(jwk, member);
    if (algs == 0) {
        cjose_jwk_release(jwk);
        return TG_OK;
    }
    k->keys[k->n].kid = kid != NULL ? strdup(kid) : NULL;
    if (kid != NULL && k->keys[k->n].kid == NULL) {
        cjose_jwk_release(jwk);
        return TG_ENOMEM;
    }
    k->keys[k->n].jwk = jwk;
    k->keys[k->n].algs = algs;
    k->n++;
    return TG_OK;
}

int tg_jwks_parse(const char *text, size_t len, struct tg_jwks **out, const char **why)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *arr = json_object_get(doc, "keys");
    struct tg_jwks *k = NULL;
    int rc = TG_EINVAL;

    *out = NULL;
    *why = "not a JWKS document (an object with a \"keys\" array)";
    if (!json_is_array(arr)) {
        goto out;
    }
    *why = "too many keys";
    if (json_array_size(arr) > JWKS_KEYS_MAX) {
        goto out;
    }
    k = jwks_new(json_array_size(arr));
    rc = TG_ENOMEM;
    if (k == NULL) {
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        rc = add_key(k, json_array_get(arr, i));
        if (rc != TG_OK) {
            goto out;
        }
    }
    *why = "no usable signature key (RSA of 2048 bits or more, or EC P-256/384/521)";
    rc = k->n > 0 ? TG_OK : TG_EINVAL;
    if (rc == TG_OK) {
        *why = NULL;
        *out = k;
        k = NULL;
    }
out:
    if (k != NULL) {
        jwks_free(k);
    }
    json_decref(doc);
    return rc;
}

int tg_jwks_from_secret(const uint8_t *key, size_t len, struct tg_jwks **out)
{
    cjose_err err;
    struct tg_jwks *k;

    *out = NULL;
    if (len == 0) {
        return TG_EINVAL;
    }
    k = jwks_new(1);
    if (k == NULL) {
        return TG_ENOMEM;
    }
    k->keys[0].jwk = cjose_jwk_create_oct_spec(key, len, &err);
    if (k->keys[0].jwk == NULL) {
        jwks_free(k);
        return TG_ENOMEM;
    }
    k->keys[0].algs = TG_JWS_HMAC;
    k->n = 1;
    *out = k;
    return TG_OK;
}

/* Tries the keys of k that fit alg and kid (any key, without a kid). */
static bool verify_with(cjose_jws_t *jws, const struct tg_jwks *k, unsigned alg, const char *kid,
                        bool *kid_seen)
{
    cjose_err err;

    for (size_t i = 0; k != NULL && i < k->n; i++) {
        const struct jwk_entry *e = &k->keys[i];
        if (kid != NULL && (e->kid == NULL || strcmp(kid, e->kid) != 0)) {
            continue;
        }
        *kid_seen = true;
        if ((e->algs & alg) != 0 && cjose_jws_verify(jws, e->jwk, &err)) {
            return true;
        }
    }
    return false;
}

static int bad(struct tg_jws_result *res, const char *why)
{
    res->why = why;
    return TG_EBADTOKEN;
}

/* The payload as a JSON object, or NULL. */
static json_t *payload(const cjose_jws_t *jws)
{
    cjose_err err;
    uint8_t *pt = NULL;
    size_t len = 0;
    json_t *claims;

    if (!cjose_jws_get_plaintext(jws, &pt, &len, &err)) {
        return NULL;
    }
    claims = json_loadb((const char *)pt, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

int tg_jws_verify(const char *token, size_t len, unsigned allowed, const struct tg_jwks *keys,
                  const struct tg_jwks *secret, json_t **claims, struct tg_jws_result *res)
{
    cjose_err err;
    cjose_jws_t *jws = NULL;
    cjose_header_t *hdr;
    const char *kid;
    unsigned alg;
    bool kid_seen = false;
    bool ok;
    int rc;

    *claims = NULL;
    memset(res, 0, sizeof(*res));
    if (len == 0 || len > TG_JWS_TOKEN_MAX || !is_compact_jws(token, len)) {
        return bad(res, "malformed token");
    }
    jws = cjose_jws_import(token, len, &err);
    if (jws == NULL) {
        return bad(res, "malformed token");
    }
    hdr = cjose_jws_get_protected(jws);
    alg = tg_jws_alg_of(cjose_header_get(hdr, CJOSE_HDR_ALG, &err));
    kid = cjose_header_get(hdr, CJOSE_HDR_KID, &err);
    if ((alg & allowed) == 0) {
        rc = bad(res, "algorithm not allowed");
    } else if (json_object_get((json_t *)hdr, "crit") != NULL) {
        rc = bad(res, "critical header extension");
    } else {
        ok = (alg & TG_JWS_HMAC) != 0 ? verify_with(jws, secret, alg, NULL, &kid_seen)
                                      : verify_with(jws, keys, alg, kid, &kid_seen);
        res->unknown_kid = !ok && !kid_seen && kid != NULL && (alg & TG_JWS_HMAC) == 0;
        rc = !ok ? bad(res, res->unknown_kid ? "unknown key id" : "bad signature") : TG_OK;
    }
    if (rc == TG_OK) {
        *claims = payload(jws);
        rc = *claims != NULL ? TG_OK : bad(res, "payload is not a JSON object");
    }
    cjose_jws_release(jws);
    return rc;
}
