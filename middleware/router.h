#ifndef TG_MIDDLEWARE_ROUTER_H
#define TG_MIDDLEWARE_ROUTER_H

#include "middleware/chain.h"

/* Last in the chain: finds the route once the headers are in (404, 405 with Allow, 413 from
 * Content-Length before the body is read), then hands the request to the route's handler. */
extern const struct tg_mw_ops tg_mw_router;

#endif
