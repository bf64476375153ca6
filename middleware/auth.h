#ifndef TG_MIDDLEWARE_AUTH_H
#define TG_MIDDLEWARE_AUTH_H

#include "middleware/chain.h"

/* Headers phase, after route (the policy is known): on every request, removes the client's
 * copies of the headers issuers set from claims. On a route with "auth", reads the bearer token
 * from Authorization (only there: never the query string) and verifies it with the route's
 * issuer: 401 with WWW-Authenticate (error="invalid_token" when a token was sent) and the JSON
 * error, no verifier detail in either; 503 while the issuer has no keys yet. A verified token
 * becomes the request's principal (auth/principal.h); its chosen claims go upstream as headers,
 * and Authorization itself only when the issuer forwards tokens. */
extern const struct tg_mw_ops tg_mw_auth;

#endif
