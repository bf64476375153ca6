#ifndef TG_MIDDLEWARE_TRACE_H
#define TG_MIDDLEWARE_TRACE_H

#include "middleware/chain.h"

/* First in the chain: reads, validates or creates the request's trace context, and puts the
 * trace id on the response. Everything after it logs with the trace id. */
extern const struct tg_mw_ops tg_mw_trace;

/* The decision itself, for unit tests: fills req->trace_id, trace_w3c, trace_bin, span_id,
 * trace_flags and tracestate from req's headers and req->conf. TG_OK or TG_ENOMEM. */
int tg_trace_extract(struct tg_req *req);

#endif
