#include "tests/support/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjose/cjose.h>
#include <criterion/criterion.h>
#include <jansson.h>

struct jwt_key {
    cjose_jwk_t *jwk;
    char kid[64];
};

static struct jwt_key *key_new(cjose_jwk_t *jwk, const char *kid)
{
    struct jwt_key *k = calloc(1, sizeof(*k));
    cjose_err err;

    cr_assert_not_null(k);
    cr_assert_not_null(jwk, "key generation failed");
    k->jwk = jwk;
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    cr_assert(cjose_jwk_set_kid(jwk, kid, strlen(kid), &err));
    return k;
}

struct jwt_key *jwt_key_rsa(const char *kid)
{
    static const uint8_t e[] = {1, 0, 1};
    cjose_err err;

    return key_new(cjose_jwk_create_RSA_random(2048, e, sizeof(e), &err), kid);
}

struct jwt_key *jwt_key_ec(const char *kid)
{
    cjose_err err;

    return key_new(cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err), kid);
}

void jwt_key_free(struct jwt_key *k)
{
    if (k != NULL) {
        cjose_jwk_release(k->jwk);
        free(k);
    }
}

char *jwt_jwks(struct jwt_key *const *keys, size_t n)
{
    json_t *doc = json_object();
    json_t *arr = json_array();
    char *text;
    cjose_err err;

    for (size_t i = 0; i < n; i++) {
        char *pub = cjose_jwk_to_json(keys[i]->jwk, false, &err);
        cr_assert_not_null(pub);
        json_array_append_new(arr, json_loads(pub, 0, NULL));
        free(pub);
    }
    json_object_set_new(doc, "keys", arr);
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    cr_assert_not_null(text);
    return text;
}

void jwt_jwks_write(const char *path, struct jwt_key *const *keys, size_t n)
{
    char tmp[512];
    char *text = jwt_jwks(keys, n);
    FILE *f;

    /* Written aside and renamed: the stub never serves half a file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    cr_assert_not_null(f, "%s", tmp);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
    free(text);
}

static char *sign(const cjose_jwk_t *jwk, const char *alg, const char *kid, const char *claims)
{
    cjose_err err;
    cjose_header_t *hdr = cjose_header_new(&err);
    cjose_jws_t *jws;
    const char *ser = NULL;
    char *out;

    cr_assert(cjose_header_set(hdr, CJOSE_HDR_ALG, alg, &err));
    if (kid != NULL) {
        cr_assert(cjose_header_set(hdr, CJOSE_HDR_KID, kid, &err));
    }
    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)claims, strlen(claims), &err);
    cr_assert_not_null(jws, "sign: %s", err.message);
    cr_assert(cjose_jws_export(jws, &ser, &err));
    out = strdup(ser);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    return out;
}

char *jwt_sign(const struct jwt_key *k, const char *alg, const char *claims)
{
    return sign(k->jwk, alg, k->kid, claims);
}

char *jwt_sign_hmac(const void *secret, size_t len, const char *alg, const char *kid,
                    const char *claims)
{
    cjose_err err;
    cjose_jwk_t *jwk = cjose_jwk_create_oct_spec(secret, len, &err);
    char *out;

    cr_assert_not_null(jwk);
    out = sign(jwk, alg, kid, claims);
    cjose_jwk_release(jwk);
    return out;
}

char *jwt_unsigned(const char *claims)
{
    static const char hdr[] = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    char *h = NULL;
    char *p = NULL;
    size_t hl = 0;
    size_t pl = 0;
    cjose_err err;
    char *out;

    cr_assert(cjose_base64url_encode((const uint8_t *)hdr, strlen(hdr), &h, &hl, &err));
    cr_assert(cjose_base64url_encode((const uint8_t *)claims, strlen(claims), &p, &pl, &err));
    out = malloc(hl + pl + 3);
    cr_assert_not_null(out);
    snprintf(out, hl + pl + 3, "%.*s.%.*s.", (int)hl, h, (int)pl, p);
    free(h);
    free(p);
    return out;
}

char *jwt_public_text(const struct jwt_key *k)
{
    cjose_err err;
    char *pub = cjose_jwk_to_json(k->jwk, false, &err);
    json_t *j = json_loads(pub, 0, NULL);
    char *n = strdup(json_string_value(json_object_get(j, "n")));

    json_decref(j);
    free(pub);
    return n;
}

char *jwt_claims(const char *iss, const char *aud, long exp_in, const char *extra)
{
    json_t *c = extra != NULL ? json_loads(extra, 0, NULL) : json_object();
    char *text;

    cr_assert_not_null(c, "bad extra claims %s", extra);
    json_object_set_new(c, "iss", json_string(iss));
    if (aud != NULL) {
        json_object_set_new(c, "aud", json_string(aud));
    }
    json_object_set_new(c, "exp", json_integer((json_int_t)time(NULL) + exp_in));
    text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}
