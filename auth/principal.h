#ifndef TG_AUTH_PRINCIPAL_H
#define TG_AUTH_PRINCIPAL_H

/* Who a request is from, once its token verified: set by the auth middleware in request memory,
 * read by the scopes, rate_limit and audit middlewares. */

#include <jansson.h>

struct tg_req;

struct tg_principal {
    json_t *claims;        /* owned: the verified payload */
    const char *issuer;    /* borrowed: the issuer's conf name */
    const char *sub;       /* "sub", or NULL (strings borrowed from claims) */
    const char *client_id; /* "client_id", else "azp", or NULL */
    const char *jti;       /* "jti", or NULL */
};

/* Attaches claims (taken over) to req as its principal. NULL when out of memory (claims are
 * freed then). Loop thread. */
struct tg_principal *tg_principal_set(struct tg_req *req, json_t *claims, const char *issuer);

/* req's principal, or NULL when no token verified. */
const struct tg_principal *tg_principal_get(const struct tg_req *req);

#endif
