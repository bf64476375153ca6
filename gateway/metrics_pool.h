#ifndef TG_GATEWAY_METRICS_POOL_H
#define TG_GATEWAY_METRICS_POOL_H

#include <stddef.h>

#include "gateway/metrics.h"

struct tg_conf;

/* Receives one sample: the label values in the family's label order, and its value. */
typedef void tg_metrics_pool_emit_fn(void *arg, const char *const *labels, double value);

/* The samples of the upstream-pool family m (TG_M_POOL_*) for every upstream of conf, and for
 * every target where the family is per target: the pools' shared counters and state gauges
 * (gateway/pool.h), read as they are (every worker writes the same ones). Any thread. */
void tg_metrics_pool_collect(enum tg_metric m, const struct tg_conf *conf,
                             tg_metrics_pool_emit_fn *emit, void *arg);

#endif
