#ifndef TG_MIDDLEWARE_ACCESS_LOG_H
#define TG_MIDDLEWARE_ACCESS_LOG_H

#include "middleware/chain.h"

/* Done phase: one request.done line per request with its final status. Never bodies,
 * tokens or query strings. */
extern const struct tg_mw_ops tg_mw_access_log;

#endif
