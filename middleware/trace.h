#ifndef TG_MIDDLEWARE_TRACE_H
#define TG_MIDDLEWARE_TRACE_H

#include "middleware/chain.h"

/* Headers phase, first: reads, validates or creates the request's trace context, so that
 * everything after it logs with the trace id. Response phase: puts the trace id and the
 * gateway's traceparent on every answer. */
extern const struct tg_mw_ops tg_mw_trace;

#endif
