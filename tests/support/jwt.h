#ifndef TG_TESTS_SUPPORT_JWT_H
#define TG_TESTS_SUPPORT_JWT_H

/* Keys the tests make and tokens signed with them (libcjose), for the gateway's token checks:
 * a JWKS of the public halves for tg-stub to serve, compact JWS tokens over claims the test
 * writes, and the forged ones (alg "none", HMAC over a public key). Test thread only. */

#include <stddef.h>

struct jwt_key;

/* A new RSA 2048 or EC P-256 key pair with key id kid. Never NULL (cr_assert). */
struct jwt_key *jwt_key_rsa(const char *kid);
struct jwt_key *jwt_key_ec(const char *kid);
void jwt_key_free(struct jwt_key *k);

/* {"keys":[...]} with the public halves of keys[0..n) (malloc'd). */
char *jwt_jwks(struct jwt_key *const *keys, size_t n);

/* Writes jwt_jwks(keys, n) to path (replacing it). */
void jwt_jwks_write(const char *path, struct jwt_key *const *keys, size_t n);

/* A compact JWS of claims (JSON text) signed by k with alg ("RS256", "ES256"...), its kid in
 * the header (malloc'd). */
char *jwt_sign(const struct jwt_key *k, const char *alg, const char *claims);

/* The same with an HMAC algorithm ("HS256"...) and secret[0..len) as the key, kid given or
 * NULL. */
char *jwt_sign_hmac(const void *secret, size_t len, const char *alg, const char *kid,
                    const char *claims);

/* An unsigned token: header {"alg":"none"}, empty signature (malloc'd). */
char *jwt_unsigned(const char *claims);

/* The modulus "n" of k's public JWK, as text (malloc'd): the bytes a forger would MAC with. */
char *jwt_public_text(const struct jwt_key *k);

/* Claims JSON: "iss", "aud" (when not NULL), "exp" now + exp_in seconds, then the members of
 * extra (JSON object text, may be NULL) (malloc'd). */
char *jwt_claims(const char *iss, const char *aud, long exp_in, const char *extra);

#endif
