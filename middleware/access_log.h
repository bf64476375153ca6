#ifndef TG_MIDDLEWARE_ACCESS_LOG_H
#define TG_MIDDLEWARE_ACCESS_LOG_H

#include "middleware/chain.h"

/* Writes one request.done line per request once its answer is final. Never bodies. */
extern const struct tg_mw_ops tg_mw_access_log;

#endif
