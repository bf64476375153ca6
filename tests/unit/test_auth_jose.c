#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>

#include "auth/jose.h"
#include "gateway/err.h"
#include "tests/support/jwt.h"

static struct jwt_key *rsa;
static struct tg_jwks *keys;

static void setup(void)
{
    char *text;
    const char *why = NULL;

    rsa = jwt_key_rsa("k1");
    text = jwt_jwks(&rsa, 1);
    cr_assert(eq(int, tg_jwks_parse(text, strlen(text), &keys, &why), TG_OK), "%s", why);
    free(text);
}

static void teardown(void)
{
    tg_jwks_unref(keys);
    jwt_key_free(rsa);
}

TestSuite(jose, .init = setup, .fini = teardown, .timeout = 20);

static int verify(const char *tok, unsigned allowed, const struct tg_jwks *secret,
                  struct tg_jws_result *res)
{
    json_t *claims = NULL;
    int rc = tg_jws_verify(tok, strlen(tok), allowed, keys, secret, &claims, res);

    cr_assert(rc == TG_OK ? claims != NULL : claims == NULL);
    json_decref(claims);
    return rc;
}

Test(jose, a_signed_token_verifies_with_its_key)
{
    char *tok = jwt_sign(rsa, "RS256", "{\"sub\":\"a\"}");
    struct tg_jws_result res;

    cr_assert(eq(sz, tg_jwks_count(keys), 1));
    cr_assert(eq(int, verify(tok, TG_JWS_RS256, NULL, &res), TG_OK));
    free(tok);
}

Test(jose, an_algorithm_outside_the_allowlist_is_refused)
{
    char *tok = jwt_sign(rsa, "RS256", "{}");
    struct tg_jws_result res;

    cr_assert(eq(int, verify(tok, TG_JWS_PS256 | TG_JWS_ES256, NULL, &res), TG_EBADTOKEN));
    cr_assert(eq(str, (char *)res.why, "algorithm not allowed"));
    free(tok);
}

Test(jose, none_has_no_bit_and_is_always_refused)
{
    char *tok = jwt_unsigned("{}");
    struct tg_jws_result res;

    cr_assert(eq(u32, tg_jws_alg_of("none"), 0));
    cr_assert(eq(int, verify(tok, ~0u, NULL, &res), TG_EBADTOKEN));
    free(tok);
}

Test(jose, hmac_tokens_verify_only_with_the_local_secret)
{
    static const char secret[] = "0123456789abcdef0123456789abcdef";
    char *pub = jwt_public_text(rsa);
    char *forged = jwt_sign_hmac(pub, strlen(pub), "HS256", "k1", "{}");
    char *good = jwt_sign_hmac(secret, strlen(secret), "HS256", NULL, "{}");
    struct tg_jwks *local = NULL;
    struct tg_jws_result res;

    cr_assert(eq(int, tg_jwks_from_secret((const uint8_t *)secret, strlen(secret), &local), TG_OK));
    cr_assert(eq(int, verify(forged, TG_JWS_RS256 | TG_JWS_HS256, NULL, &res), TG_EBADTOKEN));
    cr_assert(eq(int, verify(forged, TG_JWS_HS256, local, &res), TG_EBADTOKEN));
    cr_assert(eq(int, verify(good, TG_JWS_HS256, local, &res), TG_OK));
    cr_assert(eq(int, verify(good, TG_JWS_RS256, local, &res), TG_EBADTOKEN));
    tg_jwks_unref(local);
    free(pub);
    free(forged);
    free(good);
}

Test(jose, an_unknown_kid_is_flagged_for_a_refetch)
{
    struct jwt_key *other = jwt_key_rsa("k2");
    char *tok = jwt_sign(other, "RS256", "{}");
    struct tg_jws_result res;

    cr_assert(eq(int, verify(tok, TG_JWS_RS256, NULL, &res), TG_EBADTOKEN));
    cr_assert(res.unknown_kid);
    free(tok);
    jwt_key_free(other);
}

Test(jose, a_bad_signature_with_a_known_kid_is_no_refetch)
{
    struct jwt_key *other = jwt_key_rsa("k1"); /* same kid, another key */
    char *tok = jwt_sign(other, "RS256", "{}");
    struct tg_jws_result res;

    cr_assert(eq(int, verify(tok, TG_JWS_RS256, NULL, &res), TG_EBADTOKEN));
    cr_assert(not(res.unknown_kid));
    cr_assert(eq(str, (char *)res.why, "bad signature"));
    free(tok);
    jwt_key_free(other);
}

Test(jose, malformed_tokens_and_payloads_are_refused)
{
    /* The last two once reached an assert in libcjose's base64 decoder (a part of length 1
     * modulo 4) that aborted the process. */
    const char *bad[] = {"",
                         "a.b",
                         "a.b.c",
                         "....",
                         "eyJhbGciOiJSUzI1NiJ9..",
                         "x",
                         "eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.a",
                         "eyJhbGciOiJSUzI1NiJ9x.e30.AAAA"};
    struct tg_jws_result res;
    char *array_payload = jwt_sign(rsa, "RS256", "[1,2]");

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, verify(bad[i], TG_JWS_RS256, NULL, &res), TG_EBADTOKEN), "%s", bad[i]);
    }
    cr_assert(eq(int, verify(array_payload, TG_JWS_RS256, NULL, &res), TG_EBADTOKEN));
    free(array_payload);
}

Test(jose, jwks_without_usable_keys_is_refused)
{
    const char *docs[] = {
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"}]}",
        "not json",
    };
    struct tg_jwks *k = NULL;
    const char *why = NULL;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cr_expect(eq(int, tg_jwks_parse(docs[i], strlen(docs[i]), &k, &why), TG_EINVAL), "%s",
                  docs[i]);
        cr_expect(zero(ptr, k));
        cr_expect(not(zero(ptr, (void *)why)));
    }
}

Test(jose, encryption_keys_are_skipped)
{
    char *text = jwt_jwks(&rsa, 1);
    json_t *doc = json_loads(text, 0, NULL);
    char *enc;
    struct tg_jwks *k = NULL;
    const char *why = NULL;

    json_object_set_new(json_array_get(json_object_get(doc, "keys"), 0), "use", json_string("enc"));
    enc = json_dumps(doc, 0);
    cr_assert(eq(int, tg_jwks_parse(enc, strlen(enc), &k, &why), TG_EINVAL));
    free(enc);
    free(text);
    json_decref(doc);
}
