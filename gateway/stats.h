#ifndef TG_GATEWAY_STATS_H
#define TG_GATEWAY_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TG_WORKERS_MAX 64

/* Counters of one worker. Written only by that worker's thread (relaxed load + store, no
 * locked instruction), read by any thread for /metrics. */
struct tg_worker_stats {
    _Atomic uint64_t requests;
    _Atomic uint64_t status_2xx;
    _Atomic uint64_t status_3xx;
    _Atomic uint64_t status_4xx;
    _Atomic uint64_t status_5xx;
    _Atomic uint64_t client_closed;   /* 499 */
    _Atomic uint64_t timeouts;        /* 504 */
    _Atomic uint64_t upstream_errors; /* 502 */
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t upstream_calls;
    _Atomic int64_t live;        /* gauge: requests in progress */
    _Atomic int64_t connections; /* gauge: open client connections */
};

#define TG_STAT_ADD(s, field, n)                                                         \
    atomic_store_explicit(&(s)->field,                                                   \
                          atomic_load_explicit(&(s)->field, memory_order_relaxed) + (n), \
                          memory_order_relaxed)

/* ---- durable submissions: one block, so that it can move to the declared metrics table ---- */

#define TG_FSYNC_BUCKETS 14 /* bounds in tg_stats_fsync_bounds_us, then +Inf */
#define TG_SPOOL_STATE_N 6  /* the record states of spool/store.h */

/* How a delivery attempt ended (routes/deliver.c). */
enum tg_attempt_outcome {
    TG_ATTEMPT_DELIVERED = 0,
    TG_ATTEMPT_DUPLICATE = 1, /* the backend said it had it already: delivered */
    TG_ATTEMPT_REJECTED = 2,
    TG_ATTEMPT_RETRY = 3, /* failed, tried again later */
    TG_ATTEMPT_UNKNOWN = 4,
    TG_ATTEMPT_DEAD = 5,
    TG_ATTEMPT_OUTCOMES = 6,
};

/* What a client's Idempotency-Key met (routes/durable.c). */
enum tg_idem_result {
    TG_IDEM_NEW = 0,
    TG_IDEM_REPLAY = 1,   /* answered before: the first answer again */
    TG_IDEM_CONFLICT = 2, /* the first is still in progress: 409 */
    TG_IDEM_MISMATCH = 3, /* another request under the same key: 422 */
    TG_IDEM_RESULTS = 4,
};

/* The spool's condition, as readiness sees it. */
enum tg_spool_health {
    TG_SPOOL_OFF = 0,    /* no durable route: no spool */
    TG_SPOOL_OK = 1,     /* accepting */
    TG_SPOOL_FULL = 2,   /* disk or quota full, or free disk below min_free_bytes: 503 */
    TG_SPOOL_FAILED = 3, /* an I/O or fsync error: 503 until a restart */
};

/* Written by the spool threads, the delivery thread and the workers with atomic adds (each is
 * rare next to a request); read by /metrics. */
struct tg_durable_stats {
    _Atomic int health;                                  /* enum tg_spool_health */
    _Atomic uint64_t fsync_bucket[TG_FSYNC_BUCKETS + 1]; /* by upper bound, not cumulative */
    _Atomic uint64_t fsync_sum_us;
    _Atomic uint64_t write_errors;              /* commits that failed (full disk included) */
    _Atomic uint64_t records[TG_SPOOL_STATE_N]; /* gauges, refreshed by the spool */
    _Atomic int64_t oldest_open_ms;             /* acceptance time of the oldest undelivered */
    _Atomic uint64_t spool_bytes;
    _Atomic uint64_t disk_free_bytes;
    _Atomic uint64_t accepted; /* submissions stored */
    _Atomic uint64_t attempts[TG_ATTEMPT_OUTCOMES];
    _Atomic uint64_t idempotency[TG_IDEM_RESULTS];
    _Atomic uint64_t delivery_latency_sum_ms; /* acceptance -> delivered, over delivered */
    _Atomic uint64_t delivered;
};

/* The fsync histogram's upper bounds in microseconds. */
extern const uint64_t tg_stats_fsync_bounds_us[TG_FSYNC_BUCKETS];

/* Counts one fsync that took us microseconds. Any thread. */
void tg_stats_observe_fsync(uint64_t us);

/* Every worker's counters, for /metrics; filled by main before the workers start. */
struct tg_stats_registry {
    struct tg_worker_stats *workers[TG_WORKERS_MAX];
    unsigned n;
    atomic_bool draining; /* readiness fails once shutdown began */
    uint64_t started_unix;
    _Atomic uint64_t reloads;
    _Atomic uint64_t reload_failures;
    struct tg_durable_stats durable;
};

/* The process-wide registry. */
extern struct tg_stats_registry tg_stats;

struct tg_req_end;

/* Counts how one request ended (its final status) in st. Loop thread of st's worker. */
void tg_stats_count_end(struct tg_worker_stats *st, const struct tg_req_end *end);

#endif
