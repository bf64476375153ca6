#ifndef TG_AUTH_CLAIMS_H
#define TG_AUTH_CLAIMS_H

/* The registered claims of a verified token (RFC 7519 4.1) checked against an issuer's rules. */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What an issuer requires of a token's claims. Strings borrowed. */
struct tg_claims_rule {
    const char *iss;              /* "iss" must equal it exactly */
    const char *const *audiences; /* "aud" (a string or an array) must hold one of them */
    size_t n_audiences;           /* 0: "aud" is not checked */
    unsigned skew_s;              /* clock skew allowed on exp and nbf */
};

/* Checks claims at now_s (Unix seconds): "exp" required, a number, not passed by more than the
 * skew; "nbf", when present, reached within the skew; "iss" exact; "aud" any-of. Returns
 * TG_OK, or TG_EBADTOKEN with *why (static, for the log) set. Any thread. */
int tg_claims_check(const json_t *claims, const struct tg_claims_rule *rule, int64_t now_s,
                    const char **why);

/* The claim name of claims as text for a header or a log: a string as it is, an integer in
 * decimal (into buf, cap bytes). NULL when absent, of another type, or holding a control
 * character (it would end a header line). */
const char *tg_claims_text(const json_t *claims, const char *name, char *buf, size_t cap);

#endif
