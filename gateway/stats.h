#ifndef TG_GATEWAY_STATS_H
#define TG_GATEWAY_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/series.h"

#define TG_WORKERS_MAX 64

struct tg_span_ring;

/* Counters of one worker. Written only by that worker's thread (relaxed load + store, no
 * locked instruction), read by any thread for /metrics. An unlabelled counter is a field here,
 * counted with TG_STAT_ADD and exported by one row of the families table (gateway/metrics.c);
 * labelled ones live in series (tg_metric_add, tg_metric_observe). */
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
    _Atomic int64_t live;          /* gauge: requests in progress */
    _Atomic int64_t connections;   /* gauge: open client connections */
    struct tg_series_table series; /* labelled series: histograms, per route and upstream */
    struct tg_span_ring *spans;    /* borrowed: where its spans go, NULL when export is off */

    /* security (issue 14): refusals by the auth, scopes and rate_limit middlewares */
    _Atomic uint64_t auth_denied;  /* 401: no token, or it did not verify */
    _Atomic uint64_t forbidden;    /* 403: scope or patient context */
    _Atomic uint64_t rate_limited; /* 429 */
    _Atomic uint64_t audit_records;
};

#define TG_STAT_ADD(s, field, n)                                                         \
    atomic_store_explicit(&(s)->field,                                                   \
                          atomic_load_explicit(&(s)->field, memory_order_relaxed) + (n), \
                          memory_order_relaxed)

/* ---- durable submissions: written by the spool and delivery threads, read by the durable
 * families of gateway/metrics.c ---------------------------------------------------------- */

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
    struct tg_span_ring *span_rings[TG_WORKERS_MAX]; /* worker i's, NULL when export is off */
    atomic_bool draining;                            /* readiness fails once shutdown began */
    uint64_t started_unix;
    uint64_t started_us; /* CLOCK_REALTIME microseconds at start: process_start_time_seconds */
    _Atomic uint64_t reloads;
    _Atomic uint64_t reload_failures;
    struct tg_durable_stats durable;
};

/* The process-wide registry. */
extern struct tg_stats_registry tg_stats;

/* ---- upstream pools (gateway/pool.h) ----------------------------------------------------
 * Counters of one upstream and of one of its targets. Unlike a worker's, they are written by
 * every worker (and the health thread), with an atomic add each; they live in the pool's
 * shared state, so they survive a reload for as long as the upstream or target stays in the
 * conf. /metrics prints them labelled {upstream, target} (routes/local.c, upstream block). */
struct tg_pool_stats {
    _Atomic uint64_t calls;              /* calls asked for (a call may make several attempts) */
    _Atomic uint64_t retries;            /* attempts after a call's first */
    _Atomic uint64_t retries_refused;    /* retries the retry budget did not allow */
    _Atomic uint64_t rejected_breaker;   /* calls refused at once: the breaker throttled */
    _Atomic uint64_t rejected_no_target; /* calls refused at once: no usable target */
    _Atomic uint64_t rejected_overload;  /* calls refused at once: max_in_flight reached */
};

struct tg_target_stats {
    _Atomic uint64_t attempts;
    _Atomic uint64_t failed_status;  /* a 5xx answer */
    _Atomic uint64_t failed_connect; /* refused, unreachable, connect timeout, TLS handshake */
    _Atomic uint64_t failed_reset;   /* reset or closed before a full answer */
    _Atomic uint64_t failed_timeout; /* the attempt's time ran out */
    _Atomic uint64_t backpressure;   /* 429 answers */
    _Atomic uint64_t ejections;
    _Atomic uint64_t checks_passed;
    _Atomic uint64_t checks_failed;
};

#define TG_SHARED_ADD(s, field, n) atomic_fetch_add_explicit(&(s)->field, (n), memory_order_relaxed)

struct tg_req;

/* Counts how one request ended (req->end is final) in st: the status class counters, the
 * bytes, and the request duration histogram by route, method and status class. Loop thread
 * of st's worker. */
void tg_stats_count_end(struct tg_worker_stats *st, const struct tg_req *req);

/* "2xx", "4xx", ... or "499" for a final status; "5xx" for anything out of range. */
const char *tg_stats_class(int status);

/* Frees what st holds (its series). No other thread may read st any more. */
void tg_stats_cleanup(struct tg_worker_stats *st);

#endif
