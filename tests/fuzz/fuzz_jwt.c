/* libFuzzer: bearer tokens (JWS compact form, header, signature, claims) and SMART scopes, as
 * a client can send them, against a fixed RSA key set and an HMAC secret; and JWKS documents as
 * an IdP could serve them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/claims.h"
#include "auth/jose.h"
#include "auth/scope.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_jwks *keys;
static struct tg_jwks *secret;

/* A public RSA key of 2048 bits (kid "k1"). */
static const char jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"e\":\"AQAB\",\"n\":"
    "\"qzfFLlKZ038ivJWQEfoBxioUBpfv0N-3QuYvABKZzmCv21prdjkZnX4-Q3hp-zmGMJ5CAQcMPMMJOIOTSuFLcwmy"
    "mLnUCMWPBw7qgjMRz__vwzSMhGeGVjOuLVKPQ9Azc05-pZIsM-Z83A6V-_7AwL8rgOX4uFH6HgLS8MPfzbduIgk8"
    "jRKyj5k_HZcQRcL2IZVNb6uDVQ9DlZmimyXNqhZFrVSsrc5Z86gtLA2LdgrB7YQ_HfaRmpn1S_pIGJXBjYhVRapF"
    "Kh1I-urWf5S128Tq_2dhGU2dIReyVtWeMsUVkOEjD6TAtLtF4i_BlJxHaorCPSDrKm0sh3KdTsfE7Q\"}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
    const char *why = NULL;

    (void)argc;
    (void)argv;
    if (tg_jwks_parse(jwks, sizeof(jwks) - 1, &keys, &why) != 0 ||
        tg_jwks_from_secret(key, sizeof(key) - 1, &secret) != 0) {
        abort();
    }
    return 0;
}

static void scopes(const char *s, size_t len)
{
    static const char *const needs[] = {"patient/Observation.rs", "user/*.read",
                                        "system/Patient.c"};
    struct tg_scope need[3];
    struct tg_scope got;
    json_t *claims = json_object();

    for (size_t i = 0; i < 3; i++) {
        tg_scope_parse(needs[i], strlen(needs[i]), &need[i]);
    }
    json_object_set_new(claims, "scope", json_stringn(s, len));
    tg_scope_find_grant(claims, need, 3, &got);
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const auds[] = {"epro"};
    static const struct tg_claims_rule rule = {"https://idp", auds, 1, 60};
    const char *s = (const char *)data + 1;
    struct tg_jws_result res;
    struct tg_jwks *k = NULL;
    json_t *claims = NULL;
    const char *why;

    if (size == 0) {
        return 0;
    }
    size--;
    switch (data[0] % 3) {
    case 0:
        if (tg_jws_verify(s, size, ~0u, keys, secret, &claims, &res) == 0) {
            tg_claims_check(claims, &rule, 1800000000, &why);
            json_decref(claims);
        }
        break;
    case 1:
        if (tg_jwks_parse(s, size, &k, &why) == 0) {
            tg_jwks_unref(k);
        }
        break;
    default:
        scopes(s, size);
        break;
    }
    return 0;
}
