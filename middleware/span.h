#ifndef TG_MIDDLEWARE_SPAN_H
#define TG_MIDDLEWARE_SPAN_H

#include "middleware/chain.h"

/* Done phase: one SERVER span per sampled request (the OpenTelemetry HTTP semantic
 * conventions), handed to the OTLP exporter's queue without waiting; nothing when export is
 * off. */
extern const struct tg_mw_ops tg_mw_span;

#endif
