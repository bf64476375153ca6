#ifndef TG_MIDDLEWARE_ROUTE_H
#define TG_MIDDLEWARE_ROUTE_H

#include "middleware/chain.h"

/* Headers phase, last: finds the route (404, 405 with Allow, 400 for dot segments) and points
 * req->policy at its policy, and answers 413 from Content-Length before the body is read. The
 * request phase later hands the request to the policy's handler. */
extern const struct tg_mw_ops tg_mw_route;

/* The same step on the admin listener: its fixed paths (/metrics, /healthz, /readyz, /info),
 * GET and HEAD only. */
extern const struct tg_mw_ops tg_mw_route_admin;

#endif
