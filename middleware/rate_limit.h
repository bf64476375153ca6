#ifndef TG_MIDDLEWARE_RATE_LIMIT_H
#define TG_MIDDLEWARE_RATE_LIMIT_H

#include "middleware/chain.h"

/* Headers phase, after scopes: on a route with "rate_limit", takes a token from the client's
 * bucket (gateway/ratelimit.h), the client being the token's subject on routes with auth, else
 * the client address (behind trusted proxies, from X-Forwarded-For). An empty bucket is 429
 * with Retry-After and the JSON error. */
extern const struct tg_mw_ops tg_mw_rate_limit;

#endif
