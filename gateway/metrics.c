/* The metric families, declared once (HAProxy's stats tables): one row each, and one loop that
 * writes them all in Prometheus text format. Values come from the workers' counters (summed at
 * scrape, no lock on the request path), their labelled series, or the process itself. */
#include "gateway/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/audit.h"
#include "gateway/buf.h"
#include "gateway/build.h"
#include "gateway/conf.h"
#include "gateway/metrics_pool.h"
#include "gateway/otlp.h"
#include "gateway/procstat.h"
#include "gateway/stats.h"

/* Seconds, as OpenTelemetry advises for http.server.request.duration; bucket i counts the
 * observations of at most bounds_us[i] microseconds. */
#define N_BUCKETS 14
static const uint64_t bounds_us[N_BUCKETS] = {5000,    10000,   25000,   50000,   75000,
                                              100000,  250000,  500000,  750000,  1000000,
                                              2500000, 5000000, 7500000, 10000000};
static const char *const bounds_text[N_BUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.075",
                                                   "0.1",   "0.25", "0.5",   "0.75", "1",
                                                   "2.5",   "5",    "7.5",   "10"};
/* A histogram series holds the buckets, the count above the last bound, and the sum in us. */
#define HIST_VALUES (N_BUCKETS + 2)

enum kind {
    COUNTER = 0,
    GAUGE = 1,
    HISTOGRAM = 2,
    SUMMARY = 3, /* only _sum and _count */
};

enum source {
    FIELD = 0,  /* an unlabelled field of struct tg_worker_stats, summed over the workers */
    SERIES = 1, /* labelled series of the workers (tg_metric_add, tg_metric_observe) */
    FN = 2,     /* computed when scraped */
};

struct writer {
    struct tg_buf *out;
    const struct tg_conf *conf;
    int rc;
    bool have_ps;          /* ps read: once per scrape, for every process_* family */
    struct tg_procstat ps; /* it lists /proc/self/fd, which is long under load */
};

struct family;

/* What emit_pool writes into: the writer and the family being written. */
struct pool_emit {
    struct writer *w;
    const struct family *f;
};

#define LABELS_MAX 4 /* a family's labels; series (counted by the workers) have at most 3 */

struct family {
    const char *name;
    const char *help;
    enum kind kind;
    const char *labels[LABELS_MAX + 1]; /* NULL-terminated */
    enum source src;
    size_t field;   /* FIELD: offset in struct tg_worker_stats */
    bool is_signed; /* FIELD: an _Atomic int64_t gauge */
    void (*collect)(struct writer *w, const struct family *f); /* FN */
};

static void collect_responses(struct writer *w, const struct family *f);
static void collect_reloads(struct writer *w, const struct family *f);
static void collect_reload_failures(struct writer *w, const struct family *f);
static void collect_conf_info(struct writer *w, const struct family *f);
static void collect_conf_loaded(struct writer *w, const struct family *f);
static void collect_draining(struct writer *w, const struct family *f);
static void collect_overflow(struct writer *w, const struct family *f);
static void collect_build(struct writer *w, const struct family *f);
static void collect_otlp(struct writer *w, const struct family *f);
static void collect_process(struct writer *w, const struct family *f);
static void collect_denied(struct writer *w, const struct family *f);
static void collect_pool(struct writer *w, const struct family *f);
static void collect_audit_dropped(struct writer *w, const struct family *f);
static void collect_durable(struct writer *w, const struct family *f);

#define U(fieldname) .src = FIELD, .field = offsetof(struct tg_worker_stats, fieldname)
#define I(fieldname) U(fieldname), .is_signed = true

/* THE table. A new family: a name in enum tg_metric, a row here, and the place that counts
 * it (a field + TG_STAT_ADD, or tg_metric_add / tg_metric_observe). */
static const struct family families[TG_M_COUNT] = {
    [TG_M_REQUESTS] =
        {"tracegate_requests_total", "Requests received.", COUNTER, {NULL}, U(requests)},
    [TG_M_RESPONSES] = {"tracegate_responses_total",
                        "Requests ended, by final status class (499: the client left first).",
                        COUNTER,
                        {"class", NULL},
                        .src = FN,
                        .collect = collect_responses},
    [TG_M_REQUEST_DURATION] = {"tracegate_request_duration_seconds",
                               "Time from the request line to the end of the answer, by route "
                               "name, method and final status class.",
                               HISTOGRAM,
                               {"route", "method", "class", NULL},
                               .src = SERIES},
    [TG_M_REQUESTS_IN_FLIGHT] =
        {"tracegate_requests_in_flight", "Requests in progress.", GAUGE, {NULL}, I(live)},
    [TG_M_CONNECTIONS] =
        {"tracegate_connections", "Open client connections.", GAUGE, {NULL}, I(connections)},
    [TG_M_BYTES_IN] = {"tracegate_bytes_in_total",
                       "Request body bytes received from clients.",
                       COUNTER,
                       {NULL},
                       U(bytes_in)},
    [TG_M_BYTES_OUT] = {"tracegate_bytes_out_total",
                        "Answer body bytes sent to clients.",
                        COUNTER,
                        {NULL},
                        U(bytes_out)},
    [TG_M_UPSTREAM_CALLS] = {"tracegate_upstream_calls_total",
                             "Upstream calls started.",
                             COUNTER,
                             {NULL},
                             U(upstream_calls)},
    [TG_M_UPSTREAM_TIMEOUTS] = {"tracegate_upstream_timeouts_total",
                                "Requests answered 504 (a budget ran out).",
                                COUNTER,
                                {NULL},
                                U(timeouts)},
    [TG_M_UPSTREAM_ERRORS] = {"tracegate_upstream_errors_total",
                              "Requests answered 502 (an upstream failed).",
                              COUNTER,
                              {NULL},
                              U(upstream_errors)},
    [TG_M_UPSTREAM_DURATION] = {"tracegate_upstream_request_duration_seconds",
                                "Upstream call duration, by upstream and outcome (the status "
                                "class, or timeout, error, too_large, cancelled).",
                                HISTOGRAM,
                                {"upstream", "outcome", NULL},
                                .src = SERIES},
    [TG_M_UPSTREAM_IN_FLIGHT] = {"tracegate_upstream_requests_in_flight",
                                 "Upstream calls in progress, by upstream.",
                                 GAUGE,
                                 {"upstream", NULL},
                                 .src = SERIES},
    [TG_M_CONF_RELOADS] = {"tracegate_conf_reloads_total",
                           "Conf reloads that took effect.",
                           COUNTER,
                           {NULL},
                           .src = FN,
                           .collect = collect_reloads},
    [TG_M_CONF_RELOAD_FAILURES] = {"tracegate_conf_reload_failures_total",
                                   "Conf reloads refused (the running conf stayed).",
                                   COUNTER,
                                   {NULL},
                                   .src = FN,
                                   .collect = collect_reload_failures},
    [TG_M_CONF_INFO] = {"tracegate_conf_info",
                        "The conf in use: its file and the SHA-256 of its content.",
                        GAUGE,
                        {"file", "checksum", NULL},
                        .src = FN,
                        .collect = collect_conf_info},
    [TG_M_CONF_LOADED] = {"tracegate_conf_loaded_timestamp_seconds",
                          "When the conf in use was loaded (Unix time).",
                          GAUGE,
                          {NULL},
                          .src = FN,
                          .collect = collect_conf_loaded},
    [TG_M_DRAINING] = {"tracegate_draining",
                       "1 once a shutdown began.",
                       GAUGE,
                       {NULL},
                       .src = FN,
                       .collect = collect_draining},
    [TG_M_SERIES_OVERFLOW] = {"tracegate_metric_series_overflow_total",
                              "Labelled metric updates dropped: a worker's series table was "
                              "full.",
                              COUNTER,
                              {NULL},
                              .src = FN,
                              .collect = collect_overflow},
    [TG_M_OTLP_EXPORTED] = {"tracegate_otlp_spans_exported_total",
                            "Spans the OTLP collector accepted.",
                            COUNTER,
                            {NULL},
                            .src = FN,
                            .collect = collect_otlp},
    [TG_M_OTLP_DROPPED] = {"tracegate_otlp_spans_dropped_total",
                           "Spans not exported, by reason: queue_full (a worker's queue was "
                           "full), rejected (the collector refused them), failed (no success "
                           "after the retries).",
                           COUNTER,
                           {"reason", NULL},
                           .src = FN,
                           .collect = collect_otlp},
    [TG_M_OTLP_RETRIES] = {"tracegate_otlp_export_retries_total",
                           "Export requests sent again (429, 502, 503, 504, no answer).",
                           COUNTER,
                           {NULL},
                           .src = FN,
                           .collect = collect_otlp},
    [TG_M_POOL_REQUESTS] = {"tracegate_upstream_requests_total",
                            "Calls asked of an upstream (each makes one or more attempts).",
                            COUNTER,
                            {"upstream", NULL},
                            .src = FN,
                            .collect = collect_pool},
    [TG_M_POOL_RETRIES] = {"tracegate_upstream_retries_total",
                           "Attempts after a call's first.",
                           COUNTER,
                           {"upstream", NULL},
                           .src = FN,
                           .collect = collect_pool},
    [TG_M_POOL_RETRIES_REFUSED] = {"tracegate_upstream_retries_refused_total",
                                   "Retries the retry budget did not allow.",
                                   COUNTER,
                                   {"upstream", NULL},
                                   .src = FN,
                                   .collect = collect_pool},
    [TG_M_POOL_REJECTED] =
        {"tracegate_upstream_rejected_total",
         "Calls refused at once with 503, by reason: breaker, no_target, max_in_flight.",
         COUNTER,
         {"upstream", "reason", NULL},
         .src = FN,
         .collect = collect_pool},
    [TG_M_POOL_UNSTABLE] =
        {"tracegate_upstream_unstable",
         "1 while the upstream is marked unstable (breaker throttling or no usable target).",
         GAUGE,
         {"upstream", NULL},
         .src = FN,
         .collect = collect_pool},
    [TG_M_POOL_DROP_RATIO] = {"tracegate_upstream_breaker_drop_ratio",
                              "Probability that the breaker refuses a call now.",
                              GAUGE,
                              {"upstream", NULL},
                              .src = FN,
                              .collect = collect_pool},
    [TG_M_POOL_ATTEMPTS] = {"tracegate_upstream_attempts_total",
                            "Attempts sent to a target.",
                            COUNTER,
                            {"upstream", "target", NULL},
                            .src = FN,
                            .collect = collect_pool},
    [TG_M_POOL_FAILURES] = {"tracegate_upstream_failures_total",
                            "Failed attempts, by kind: status (5xx), connect, reset, timeout.",
                            COUNTER,
                            {"upstream", "target", "kind", NULL},
                            .src = FN,
                            .collect = collect_pool},
    [TG_M_POOL_BACKPRESSURE] = {"tracegate_upstream_backpressure_total",
                                "429 answers (back-pressure, not failures).",
                                COUNTER,
                                {"upstream", "target", NULL},
                                .src = FN,
                                .collect = collect_pool},
    [TG_M_POOL_EJECTIONS] = {"tracegate_upstream_ejections_total",
                             "Times a target was ejected.",
                             COUNTER,
                             {"upstream", "target", NULL},
                             .src = FN,
                             .collect = collect_pool},
    [TG_M_POOL_CHECKS] = {"tracegate_upstream_health_checks_total",
                          "Active health checks, by result: pass, fail.",
                          COUNTER,
                          {"upstream", "target", "result", NULL},
                          .src = FN,
                          .collect = collect_pool},
    [TG_M_POOL_TARGET_IN_FLIGHT] = {"tracegate_upstream_target_in_flight",
                                    "Attempts in flight to a target.",
                                    GAUGE,
                                    {"upstream", "target", NULL},
                                    .src = FN,
                                    .collect = collect_pool},
    [TG_M_POOL_TARGET_EJECTED] = {"tracegate_upstream_target_ejected",
                                  "1 while a target is ejected.",
                                  GAUGE,
                                  {"upstream", "target", NULL},
                                  .src = FN,
                                  .collect = collect_pool},
    [TG_M_POOL_TARGET_HEALTHY] = {"tracegate_upstream_healthy",
                                  "0 while health checks hold a target down.",
                                  GAUGE,
                                  {"upstream", "target", NULL},
                                  .src = FN,
                                  .collect = collect_pool},
    [TG_M_POOL_TARGET_USABLE] = {"tracegate_upstream_target_usable",
                                 "1 while a target may get calls.",
                                 GAUGE,
                                 {"upstream", "target", NULL},
                                 .src = FN,
                                 .collect = collect_pool},
    [TG_M_AUTH_DENIED] = {"tracegate_auth_denied_total",
                          "Requests refused by the auth, scopes and rate_limit middlewares, by "
                          "reason: invalid_token (401), insufficient_scope (403), rate_limited "
                          "(429).",
                          COUNTER,
                          {"reason", NULL},
                          .src = FN,
                          .collect = collect_denied},
    [TG_M_AUDIT_RECORDS] = {"tracegate_audit_records_total",
                            "Audit records handed to the audit file's writer.",
                            COUNTER,
                            {NULL},
                            U(audit_records)},
    [TG_M_AUDIT_DROPPED] = {"tracegate_audit_dropped_total",
                            "Audit records lost: the writer's queue was full or the file failed.",
                            COUNTER,
                            {NULL},
                            .src = FN,
                            .collect = collect_audit_dropped},
    [TG_M_SPOOL_HEALTH] = {"tracegate_spool_health",
                           "The spool's condition: 1 for the one it is in (no samples without a "
                           "spool).",
                           GAUGE,
                           {"state", NULL},
                           .src = FN,
                           .collect = collect_durable},
    [TG_M_SPOOL_RECORDS] = {"tracegate_spool_records",
                            "Records in the spool by state.",
                            GAUGE,
                            {"state", NULL},
                            .src = FN,
                            .collect = collect_durable},
    [TG_M_SPOOL_OLDEST_OPEN_AGE] = {"tracegate_spool_oldest_open_age_seconds",
                                    "Age of the oldest submission not yet delivered.",
                                    GAUGE,
                                    {NULL},
                                    .src = FN,
                                    .collect = collect_durable},
    [TG_M_SPOOL_BYTES] = {"tracegate_spool_bytes",
                          "Size of the spool file.",
                          GAUGE,
                          {NULL},
                          .src = FN,
                          .collect = collect_durable},
    [TG_M_SPOOL_DISK_FREE] = {"tracegate_spool_disk_free_bytes",
                              "Free space on the spool's file system.",
                              GAUGE,
                              {NULL},
                              .src = FN,
                              .collect = collect_durable},
    [TG_M_SPOOL_WRITE_ERRORS] = {"tracegate_spool_write_errors_total",
                                 "Spool commits that failed (a full disk included).",
                                 COUNTER,
                                 {NULL},
                                 .src = FN,
                                 .collect = collect_durable},
    [TG_M_SPOOL_FSYNC] = {"tracegate_spool_fsync_seconds",
                          "Time each fsync of the spool took.",
                          HISTOGRAM,
                          {NULL},
                          .src = FN,
                          .collect = collect_durable},
    [TG_M_DURABLE_ACCEPTED] = {"tracegate_durable_accepted_total",
                               "Submissions stored by durable routes.",
                               COUNTER,
                               {NULL},
                               .src = FN,
                               .collect = collect_durable},
    [TG_M_DELIVERY_ATTEMPTS] = {"tracegate_delivery_attempts_total",
                                "Delivery attempts of durable submissions, by outcome.",
                                COUNTER,
                                {"outcome", NULL},
                                .src = FN,
                                .collect = collect_durable},
    [TG_M_DELIVERY_LATENCY] = {"tracegate_delivery_latency_seconds",
                               "Acceptance to delivery of durable submissions.",
                               SUMMARY,
                               {NULL},
                               .src = FN,
                               .collect = collect_durable},
    [TG_M_IDEMPOTENCY] = {"tracegate_idempotency_total",
                          "What an Idempotency-Key met on durable routes.",
                          COUNTER,
                          {"result", NULL},
                          .src = FN,
                          .collect = collect_durable},
    [TG_M_BUILD_INFO] = {"tracegate_build_info",
                         "The binary: version, commit and the library versions it runs on.",
                         GAUGE,
                         {"version", "commit", "libmicrohttpd", "libcurl", NULL},
                         .src = FN,
                         .collect = collect_build},
    [TG_M_PROCESS_CPU] = {"process_cpu_seconds_total",
                          "User and system CPU time.",
                          COUNTER,
                          {NULL},
                          .src = FN,
                          .collect = collect_process},
    [TG_M_PROCESS_RSS] = {"process_resident_memory_bytes",
                          "Resident memory.",
                          GAUGE,
                          {NULL},
                          .src = FN,
                          .collect = collect_process},
    [TG_M_PROCESS_VSIZE] = {"process_virtual_memory_bytes",
                            "Virtual memory.",
                            GAUGE,
                            {NULL},
                            .src = FN,
                            .collect = collect_process},
    [TG_M_PROCESS_FDS] = {"process_open_fds",
                          "Open file descriptors.",
                          GAUGE,
                          {NULL},
                          .src = FN,
                          .collect = collect_process},
    [TG_M_PROCESS_MAX_FDS] = {"process_max_fds",
                              "The open file descriptor limit.",
                              GAUGE,
                              {NULL},
                              .src = FN,
                              .collect = collect_process},
    [TG_M_PROCESS_START] = {"process_start_time_seconds",
                            "When the process started (Unix time).",
                            GAUGE,
                            {NULL},
                            .src = FN,
                            .collect = collect_process},
};

static const char *const kind_names[] = {"counter", "gauge", "histogram", "summary"};

const char *tg_metric_name(enum tg_metric m)
{
    return families[m].name;
}

/* ---- counting ---------------------------------------------------------------------------- */

static size_t label_count(const struct family *f)
{
    size_t n = 0;

    while (n < LABELS_MAX && f->labels[n] != NULL) {
        n++;
    }
    return n;
}

void tg_metric_add(struct tg_worker_stats *st, enum tg_metric m, const char *const *labels,
                   int64_t n)
{
    const struct family *f = &families[m];
    struct tg_series *s;

    if (st == NULL) {
        return;
    }
    s = tg_series_get(&st->series, (unsigned)m, labels, label_count(f), 1);
    if (s != NULL) {
        tg_series_add(s, 0, (uint64_t)n); /* a gauge's -1 wraps, and sums back, as int64 */
    }
}

void tg_metric_observe(struct tg_worker_stats *st, enum tg_metric m, const char *const *labels,
                       uint64_t us)
{
    const struct family *f = &families[m];
    struct tg_series *s;
    size_t b = 0;

    if (st == NULL) {
        return;
    }
    s = tg_series_get(&st->series, (unsigned)m, labels, label_count(f), HIST_VALUES);
    if (s == NULL) {
        return;
    }
    while (b < N_BUCKETS && us > bounds_us[b]) {
        b++;
    }
    tg_series_add(s, b, 1);
    tg_series_add(s, HIST_VALUES - 1, us);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->rc == TG_OK) {
        w->rc = tg_buf_append(w->out, s, n);
    }
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct writer *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    }
}

/* A label value or help text with the exposition format's escapes: backslash, newline and,
 * in label values, the double quote. */
static void put_escaped(struct writer *w, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            put(w, "\\\\", 2);
        } else if (*s == '\n') {
            put(w, "\\n", 2);
        } else if (*s == '"' && quote) {
            put(w, "\\\"", 2);
        } else {
            put(w, s, 1);
        }
    }
}

/* name{l1="v1",...,extra_name="extra_value"} with suffix after the name ("_bucket"...). */
static void put_name(struct writer *w, const struct family *f, const char *suffix,
                     const char *const *values, const char *extra_name, const char *extra_value)
{
    size_t n = label_count(f);
    bool first = true;

    put_str(w, f->name);
    put_str(w, suffix);
    if (n == 0 && extra_name == NULL) {
        return;
    }
    put(w, "{", 1);
    for (size_t i = 0; i < n && values != NULL; i++) {
        putf(w, "%s%s=\"", first ? "" : ",", f->labels[i]);
        put_escaped(w, values[i], true);
        put(w, "\"", 1);
        first = false;
    }
    if (extra_name != NULL) {
        putf(w, "%s%s=\"%s\"", first ? "" : ",", extra_name, extra_value);
    }
    put(w, "}", 1);
}

static void sample_u64(struct writer *w, const struct family *f, const char *const *values,
                       uint64_t v)
{
    put_name(w, f, "", values, NULL, NULL);
    putf(w, " %" PRIu64 "\n", v);
}

static void sample_i64(struct writer *w, const struct family *f, const char *const *values,
                       int64_t v)
{
    put_name(w, f, "", values, NULL, NULL);
    putf(w, " %" PRId64 "\n", v);
}

static void sample_double(struct writer *w, const struct family *f, double v)
{
    put_name(w, f, "", NULL, NULL, NULL);
    putf(w, " %.6f\n", v);
}

/* us as seconds with six decimals, exact. */
static void put_seconds(struct writer *w, uint64_t us)
{
    putf(w, "%" PRIu64 ".%06" PRIu64, us / 1000000u, us % 1000000u);
}

static void write_histogram(struct writer *w, const struct family *f, const char *const *values,
                            const uint64_t *v)
{
    uint64_t cum = 0;

    for (size_t b = 0; b < N_BUCKETS; b++) {
        cum += v[b];
        put_name(w, f, "_bucket", values, "le", bounds_text[b]);
        putf(w, " %" PRIu64 "\n", cum);
    }
    cum += v[N_BUCKETS];
    put_name(w, f, "_bucket", values, "le", "+Inf");
    putf(w, " %" PRIu64 "\n", cum);
    put_name(w, f, "_sum", values, NULL, NULL);
    put(w, " ", 1);
    put_seconds(w, v[HIST_VALUES - 1]);
    put(w, "\n", 1);
    put_name(w, f, "_count", values, NULL, NULL);
    putf(w, " %" PRIu64 "\n", cum);
}

static void write_field(struct writer *w, const struct family *f)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < tg_stats.n; i++) {
        const void *p = (const char *)tg_stats.workers[i] + f->field;
        total += atomic_load_explicit((const _Atomic uint64_t *)p, memory_order_relaxed);
    }
    if (f->is_signed) {
        sample_i64(w, f, NULL, (int64_t)total); /* two's complement sums the same */
    } else {
        sample_u64(w, f, NULL, total);
    }
}

static int cmp_labels(const void *a, const void *b)
{
    const struct tg_series *x = *(const struct tg_series *const *)a;
    const struct tg_series *y = *(const struct tg_series *const *)b;

    for (size_t i = 0; i < TG_SERIES_LABELS_MAX && x->labels[i] != NULL; i++) {
        int c = strcmp(x->labels[i], y->labels[i]);
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

/* Writes one group of series with equal labels (from different workers), summed. */
static void write_group(struct writer *w, const struct family *f, const struct tg_series *const *g,
                        size_t n)
{
    uint64_t v[HIST_VALUES] = {0};
    size_t nv = f->kind == HISTOGRAM ? HIST_VALUES : 1;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < nv && j < g[i]->n_values; j++) {
            v[j] +=
                atomic_load_explicit(&((struct tg_series *)g[i])->values[j], memory_order_relaxed);
        }
    }
    if (f->kind == HISTOGRAM) {
        write_histogram(w, f, g[0]->labels, v);
    } else if (f->kind == GAUGE) {
        sample_i64(w, f, g[0]->labels, (int64_t)v[0]);
    } else {
        sample_u64(w, f, g[0]->labels, v[0]);
    }
}

/* Every worker's series of family m, grouped by labels (sorted, so the output is stable). */
static void write_series(struct writer *w, enum tg_metric m)
{
    const struct family *f = &families[m];
    const struct tg_series **all = NULL;
    size_t n = 0, cap = 0;

    for (unsigned i = 0; i < tg_stats.n && w->rc == TG_OK; i++) {
        const struct tg_series_table *t = &tg_stats.workers[i]->series;
        for (size_t s = 0; s < TG_SERIES_SLOTS; s++) {
            const struct tg_series *x = tg_series_at(t, s);
            if (x == NULL || x->family != (unsigned)m) {
                continue;
            }
            if (n == cap) {
                /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
                const struct tg_series **p = realloc(all, (cap + 64) * sizeof(*all));
                if (p == NULL) {
                    w->rc = TG_ENOMEM;
                    break;
                }
                all = p;
                cap += 64;
            }
            all[n++] = x;
        }
    }
    if (n > 0) {
        qsort(all, n, sizeof(*all), cmp_labels); /* NOLINT(bugprone-sizeof-expression) */
    }
    for (size_t i = 0; i < n && w->rc == TG_OK;) {
        size_t j = i + 1;
        while (j < n && cmp_labels(&all[i], &all[j]) == 0) {
            j++;
        }
        write_group(w, f, all + i, j - i);
        i = j;
    }
    free(all);
}

/* ---- families computed when scraped ------------------------------------------------------ */

static uint64_t sum_field(size_t offset)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < tg_stats.n; i++) {
        const void *p = (const char *)tg_stats.workers[i] + offset;
        total += atomic_load_explicit((const _Atomic uint64_t *)p, memory_order_relaxed);
    }
    return total;
}

/* Every class, zero or not: dashboards and the tests read all five. */
/* A sample of a pool family: its labels and a value (an integer for counters). */
static void emit_pool(void *arg, const char *const *labels, double v)
{
    struct writer *w = ((struct pool_emit *)arg)->w;
    const struct family *f = ((struct pool_emit *)arg)->f;

    put_name(w, f, "", labels, NULL, NULL);
    if (f->kind == COUNTER || v == (double)(int64_t)v) {
        putf(w, " %" PRId64 "\n", (int64_t)v);
    } else {
        putf(w, " %.6f\n", v);
    }
}

static void collect_pool(struct writer *w, const struct family *f)
{
    struct pool_emit e = {w, f};

    tg_metrics_pool_collect((enum tg_metric)(f - families), w->conf, emit_pool, &e);
}

static void collect_denied(struct writer *w, const struct family *f)
{
    static const char *const reasons[] = {"invalid_token", "insufficient_scope", "rate_limited"};
    static const size_t fields[] = {
        offsetof(struct tg_worker_stats, auth_denied),
        offsetof(struct tg_worker_stats, forbidden),
        offsetof(struct tg_worker_stats, rate_limited),
    };

    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        sample_u64(w, f, &reasons[i], sum_field(fields[i]));
    }
}

static void collect_audit_dropped(struct writer *w, const struct family *f)
{
    sample_u64(w, f, NULL, w->conf != NULL ? tg_audit_sink_dropped(w->conf->audit_sink) : 0);
}

static void collect_responses(struct writer *w, const struct family *f)
{
    static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx", "499"};
    static const size_t fields[] = {
        offsetof(struct tg_worker_stats, status_2xx),
        offsetof(struct tg_worker_stats, status_3xx),
        offsetof(struct tg_worker_stats, status_4xx),
        offsetof(struct tg_worker_stats, status_5xx),
        offsetof(struct tg_worker_stats, client_closed),
    };

    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        sample_u64(w, f, &classes[i], sum_field(fields[i]));
    }
}

static void collect_reloads(struct writer *w, const struct family *f)
{
    sample_u64(w, f, NULL, atomic_load(&tg_stats.reloads));
}

static void collect_reload_failures(struct writer *w, const struct family *f)
{
    sample_u64(w, f, NULL, atomic_load(&tg_stats.reload_failures));
}

static void collect_conf_info(struct writer *w, const struct family *f)
{
    const char *values[2];

    if (w->conf == NULL) {
        return;
    }
    values[0] = w->conf->file;
    values[1] = w->conf->checksum;
    sample_u64(w, f, values, 1);
}

static void collect_conf_loaded(struct writer *w, const struct family *f)
{
    if (w->conf != NULL) {
        put_name(w, f, "", NULL, NULL, NULL);
        put(w, " ", 1);
        put_seconds(w, w->conf->loaded_us);
        put(w, "\n", 1);
    }
}

static void collect_draining(struct writer *w, const struct family *f)
{
    sample_u64(w, f, NULL, atomic_load(&tg_stats.draining) ? 1 : 0);
}

static void collect_overflow(struct writer *w, const struct family *f)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < tg_stats.n; i++) {
        total += atomic_load_explicit(&tg_stats.workers[i]->series.overflow, memory_order_relaxed);
    }
    sample_u64(w, f, NULL, total);
}

static void collect_otlp(struct writer *w, const struct family *f)
{
    static const char *const reasons[] = {"queue_full", "rejected", "failed"};
    enum tg_metric m = (enum tg_metric)(f - families);

    if (m == TG_M_OTLP_EXPORTED) {
        sample_u64(w, f, NULL, atomic_load(&tg_otlp_stats.exported));
    } else if (m == TG_M_OTLP_RETRIES) {
        sample_u64(w, f, NULL, atomic_load(&tg_otlp_stats.retries));
    } else {
        sample_u64(w, f, &reasons[0], tg_otlp_queue_drops(atomic_load(&tg_otlp_stats.running)));
        sample_u64(w, f, &reasons[1], atomic_load(&tg_otlp_stats.rejected));
        sample_u64(w, f, &reasons[2], atomic_load(&tg_otlp_stats.failed));
    }
}

static void collect_build(struct writer *w, const struct family *f)
{
    struct tg_build b;
    const char *values[4];

    tg_build_get(&b);
    values[0] = b.version;
    values[1] = b.commit;
    values[2] = b.libmicrohttpd;
    values[3] = b.libcurl;
    sample_u64(w, f, values, 1);
}

static void collect_process(struct writer *w, const struct family *f)
{
    enum tg_metric m = (enum tg_metric)(f - families);
    const struct tg_procstat *ps = &w->ps;

    if (!w->have_ps && m != TG_M_PROCESS_START) {
        tg_procstat_read(&w->ps);
        w->have_ps = true;
    }
    switch (m) {
    case TG_M_PROCESS_CPU:
        sample_double(w, f, ps->cpu_seconds);
        break;
    case TG_M_PROCESS_RSS:
        sample_u64(w, f, NULL, ps->rss_bytes);
        break;
    case TG_M_PROCESS_VSIZE:
        sample_u64(w, f, NULL, ps->vsize_bytes);
        break;
    case TG_M_PROCESS_FDS:
        sample_i64(w, f, NULL, ps->open_fds);
        break;
    case TG_M_PROCESS_MAX_FDS:
        if (ps->max_fds >= 0) {
            sample_i64(w, f, NULL, ps->max_fds);
        }
        break;
    default:
        put_name(w, f, "", NULL, NULL, NULL);
        put(w, " ", 1);
        put_seconds(w, tg_stats.started_us);
        put(w, "\n", 1);
        break;
    }
}

/* ---- durable routes: the spool, delivery, idempotency (tg_stats.durable) ----------------- */

#define DLOAD(field) atomic_load_explicit(&tg_stats.durable.field, memory_order_relaxed)

/* The label values of the durable families, in the order of their counters. */
static const char *const spool_states[] = {"queued",   "delivering", "delivered",
                                           "rejected", "dead",       "unknown"};
static const char *const attempt_outcomes[] = {"delivered", "duplicate", "rejected",
                                               "retry",     "unknown",   "dead"};
static const char *const idem_results[] = {"new", "replay", "conflict", "mismatch"};

static void labelled_counts(struct writer *w, const struct family *f, const char *const *values,
                            const _Atomic uint64_t *counts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sample_u64(w, f, &values[i], atomic_load_explicit(&counts[i], memory_order_relaxed));
    }
}

/* The fsync histogram has bounds of its own (50 us to 1 s): a disk's sync is far below the
 * request buckets. */
static void fsync_histogram(struct writer *w, const struct family *f)
{
    uint64_t cum = 0;
    char le[32];

    for (size_t i = 0; i <= TG_FSYNC_BUCKETS; i++) {
        cum += DLOAD(fsync_bucket[i]);
        if (i < TG_FSYNC_BUCKETS) {
            snprintf(le, sizeof(le), "%g", (double)tg_stats_fsync_bounds_us[i] / 1e6);
        }
        put_name(w, f, "_bucket", NULL, "le", i < TG_FSYNC_BUCKETS ? le : "+Inf");
        putf(w, " %" PRIu64 "\n", cum);
    }
    put_name(w, f, "_sum", NULL, NULL, NULL);
    put(w, " ", 1);
    put_seconds(w, DLOAD(fsync_sum_us));
    put(w, "\n", 1);
    put_name(w, f, "_count", NULL, NULL, NULL);
    putf(w, " %" PRIu64 "\n", cum);
}

/* No samples without a spool: a gateway without durable routes says nothing about one. */
static void collect_durable(struct writer *w, const struct family *f)
{
    int health = DLOAD(health);
    int64_t oldest = DLOAD(oldest_open_ms);
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    static const char *const health_states[] = {"ok", "full", "failed"};

    if (health == TG_SPOOL_OFF) {
        return;
    }
    switch ((enum tg_metric)(f - families)) {
    case TG_M_SPOOL_HEALTH:
        for (int i = 0; i < 3; i++) {
            /* A full label array: the family's one label is read from it, never past it. */
            const char *values[LABELS_MAX] = {health_states[i]};
            sample_u64(w, f, values, health == TG_SPOOL_OK + i ? 1 : 0);
        }
        break;
    case TG_M_SPOOL_RECORDS:
        labelled_counts(w, f, spool_states, tg_stats.durable.records, TG_SPOOL_STATE_N);
        break;
    case TG_M_SPOOL_OLDEST_OPEN_AGE:
        sample_double(w, f, oldest > 0 && now_ms > oldest ? (double)(now_ms - oldest) / 1e3 : 0);
        break;
    case TG_M_SPOOL_BYTES:
        sample_u64(w, f, NULL, DLOAD(spool_bytes));
        break;
    case TG_M_SPOOL_DISK_FREE:
        sample_u64(w, f, NULL, DLOAD(disk_free_bytes));
        break;
    case TG_M_SPOOL_WRITE_ERRORS:
        sample_u64(w, f, NULL, DLOAD(write_errors));
        break;
    case TG_M_SPOOL_FSYNC:
        fsync_histogram(w, f);
        break;
    case TG_M_DURABLE_ACCEPTED:
        sample_u64(w, f, NULL, DLOAD(accepted));
        break;
    case TG_M_DELIVERY_ATTEMPTS:
        labelled_counts(w, f, attempt_outcomes, tg_stats.durable.attempts, TG_ATTEMPT_OUTCOMES);
        break;
    case TG_M_DELIVERY_LATENCY:
        put_name(w, f, "_sum", NULL, NULL, NULL);
        put(w, " ", 1);
        put_seconds(w, DLOAD(delivery_latency_sum_ms) * 1000u);
        put(w, "\n", 1);
        put_name(w, f, "_count", NULL, NULL, NULL);
        putf(w, " %" PRIu64 "\n", DLOAD(delivered));
        break;
    default:
        labelled_counts(w, f, idem_results, tg_stats.durable.idempotency, TG_IDEM_RESULTS);
        break;
    }
}

/* ---- the one writer loop ----------------------------------------------------------------- */

int tg_metrics_write(struct tg_buf *out, const struct tg_conf *conf)
{
    struct writer w = {.out = out, .conf = conf, .rc = TG_OK};

    for (size_t m = 0; m < TG_M_COUNT && w.rc == TG_OK; m++) {
        const struct family *f = &families[m];
        putf(&w, "# HELP %s ", f->name);
        put_escaped(&w, f->help, false);
        putf(&w, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        switch (f->src) {
        case FIELD:
            write_field(&w, f);
            break;
        case SERIES:
            write_series(&w, (enum tg_metric)m);
            break;
        case FN:
            f->collect(&w, f);
            break;
        }
    }
    return w.rc;
}
