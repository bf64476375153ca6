#ifndef TG_GATEWAY_METRICS_H
#define TG_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

struct tg_buf;
struct tg_conf;
struct tg_worker_stats;

/* Every metric family the gateway exports, in the order /metrics writes them. Each has one
 * row in the families table of gateway/metrics.c (name, help, type, labels, where its values
 * come from); that row and the place that counts it are all a new family needs. */
enum tg_metric {
    TG_M_REQUESTS = 0,
    TG_M_RESPONSES,
    TG_M_REQUEST_DURATION,
    TG_M_REQUESTS_IN_FLIGHT,
    TG_M_CONNECTIONS,
    TG_M_BYTES_IN,
    TG_M_BYTES_OUT,
    TG_M_UPSTREAM_CALLS,
    TG_M_UPSTREAM_TIMEOUTS,
    TG_M_UPSTREAM_ERRORS,
    TG_M_UPSTREAM_DURATION,
    TG_M_UPSTREAM_IN_FLIGHT,
    TG_M_CONF_RELOADS,
    TG_M_CONF_RELOAD_FAILURES,
    TG_M_CONF_INFO,
    TG_M_CONF_LOADED,
    TG_M_DRAINING,
    TG_M_SERIES_OVERFLOW,
    TG_M_OTLP_EXPORTED,
    TG_M_OTLP_DROPPED,
    TG_M_OTLP_RETRIES,
    TG_M_POOL_REQUESTS,
    TG_M_POOL_RETRIES,
    TG_M_POOL_RETRIES_REFUSED,
    TG_M_POOL_REJECTED,
    TG_M_POOL_UNSTABLE,
    TG_M_POOL_DROP_RATIO,
    TG_M_POOL_ATTEMPTS,
    TG_M_POOL_FAILURES,
    TG_M_POOL_BACKPRESSURE,
    TG_M_POOL_EJECTIONS,
    TG_M_POOL_CHECKS,
    TG_M_POOL_TARGET_IN_FLIGHT,
    TG_M_POOL_TARGET_EJECTED,
    TG_M_POOL_TARGET_HEALTHY,
    TG_M_POOL_TARGET_USABLE,
    TG_M_AUTH_DENIED,
    TG_M_AUDIT_RECORDS,
    TG_M_AUDIT_DROPPED,
    TG_M_SPOOL_HEALTH,
    TG_M_SPOOL_RECORDS,
    TG_M_SPOOL_OLDEST_OPEN_AGE,
    TG_M_SPOOL_BYTES,
    TG_M_SPOOL_DISK_FREE,
    TG_M_SPOOL_WRITE_ERRORS,
    TG_M_SPOOL_FSYNC,
    TG_M_DURABLE_ACCEPTED,
    TG_M_DELIVERY_ATTEMPTS,
    TG_M_DELIVERY_LATENCY,
    TG_M_IDEMPOTENCY,
    TG_M_BUILD_INFO,
    TG_M_PROCESS_CPU,
    TG_M_PROCESS_RSS,
    TG_M_PROCESS_VSIZE,
    TG_M_PROCESS_FDS,
    TG_M_PROCESS_MAX_FDS,
    TG_M_PROCESS_START,
    TG_M_COUNT,
};

/* Adds n to the labelled counter or gauge m of worker st (labels: as many as the family
 * declares, borrowed; copied the first time). A no-op when st is NULL. Loop thread of st's
 * worker: no lock, no locked instruction. */
void tg_metric_add(struct tg_worker_stats *st, enum tg_metric m, const char *const *labels,
                   int64_t n);

/* Records one observation of us microseconds in the histogram m of worker st, as
 * tg_metric_add. */
void tg_metric_observe(struct tg_worker_stats *st, enum tg_metric m, const char *const *labels,
                       uint64_t us);

/* Writes every family in Prometheus text format 0.0.4 into out, the workers' values summed
 * (tg_stats), conf the one the scraping request holds (its checksum and load time). TG_OK or
 * TG_ENOMEM. Any thread. */
int tg_metrics_write(struct tg_buf *out, const struct tg_conf *conf) TG_MUST_CHECK;

/* The family's name (tests, checks). */
const char *tg_metric_name(enum tg_metric m);

#endif
