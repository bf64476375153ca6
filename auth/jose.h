#ifndef TG_AUTH_JOSE_H
#define TG_AUTH_JOSE_H

/* Signed tokens (JWS, RFC 7515) and key sets (JWKS, RFC 7517): the only libcjose user. A key
 * set is immutable once made and shared by reference across threads; verifying with it takes no
 * lock. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Signature algorithms, one bit each, so that an issuer's allowlist is a mask. "none" has no
 * bit: it is never allowed. */
enum tg_jws_alg {
    TG_JWS_RS256 = 1 << 0,
    TG_JWS_RS384 = 1 << 1,
    TG_JWS_RS512 = 1 << 2,
    TG_JWS_PS256 = 1 << 3,
    TG_JWS_PS384 = 1 << 4,
    TG_JWS_PS512 = 1 << 5,
    TG_JWS_ES256 = 1 << 6,
    TG_JWS_ES384 = 1 << 7,
    TG_JWS_ES512 = 1 << 8,
    TG_JWS_HS256 = 1 << 9,
    TG_JWS_HS384 = 1 << 10,
    TG_JWS_HS512 = 1 << 11,
};

#define TG_JWS_HMAC      (TG_JWS_HS256 | TG_JWS_HS384 | TG_JWS_HS512)
#define TG_JWS_TOKEN_MAX 16384 /* bytes of a compact token; longer ones are refused unread */

/* The bit of an algorithm name ("RS256"...), 0 for "none" and anything unknown. */
unsigned tg_jws_alg_of(const char *name);

/* A set of verification keys. */
struct tg_jwks;

/* Parses a JWKS document (text, len bytes): {"keys": [...]}. Keys for signing ("use" absent or
 * "sig") of type RSA and EC are kept, each usable for the algorithms its type (and curve, and
 * "alg" when given) allows; symmetric ("oct") keys are skipped, since HMAC tokens are only
 * checked with a local secret. TG_OK with *out (refs = 1), TG_EINVAL with why (static) set
 * when the document is malformed or holds no usable key, TG_ENOMEM. */
int tg_jwks_parse(const char *text, size_t len, struct tg_jwks **out, const char **why);

/* A set holding one symmetric key of len bytes, for HS256/384/512. TG_OK, TG_EINVAL (empty
 * key), TG_ENOMEM. */
int tg_jwks_from_secret(const uint8_t *key, size_t len, struct tg_jwks **out);

/* References; tg_jwks_unref frees at zero (NULL is a no-op). Any thread. */
struct tg_jwks *tg_jwks_ref(struct tg_jwks *keys);
void tg_jwks_unref(struct tg_jwks *keys);

/* Keys in the set. */
size_t tg_jwks_count(const struct tg_jwks *keys);

/* What tg_jws_verify found out about a token that failed. */
struct tg_jws_result {
    const char *why;  /* static: for the log, never for the client */
    bool unknown_kid; /* the token names a key id the set lacks: the set may be stale */
};

/* Verifies the compact JWS token (len bytes): its header's "alg" must be in the allowed mask,
 * its "kid" (when present) must name a key of keys (or of secret, for HMAC algorithms, which
 * only secret may verify), the key must fit the algorithm, and the signature must verify. A
 * header with "crit" is refused (no extension is understood). On success *claims gets the
 * payload, a JSON object (caller decrefs). Returns TG_OK or TG_EBADTOKEN (res says why); keys
 * and secret may be NULL. Any thread. */
int tg_jws_verify(const char *token, size_t len, unsigned allowed, const struct tg_jwks *keys,
                  const struct tg_jwks *secret, json_t **claims, struct tg_jws_result *res);

#endif
