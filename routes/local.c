/* The local handler: answers the gateway makes itself (health, readiness, metrics). */
#include "routes/local.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "routes/table.h"

static int answer(struct tg_req *req, int status, const char *ctype, const char *text)
{
    char *body = strdup(text);

    if (body == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = status;
    tg_resp_set_body(&req->resp, body, strlen(body));
    tg_resp_add_header(&req->resp, "Content-Type", ctype);
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    return TG_MW_DONE;
}

static uint64_t sum(size_t offset)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < tg_stats.n; i++) {
        const _Atomic uint64_t *f =
            (const _Atomic uint64_t *)(const void *)((const char *)tg_stats.workers[i] + offset);
        total += atomic_load_explicit(f, memory_order_relaxed);
    }
    return total;
}

static int64_t gauge(size_t offset)
{
    int64_t total = 0;

    for (unsigned i = 0; i < tg_stats.n; i++) {
        const _Atomic int64_t *f =
            (const _Atomic int64_t *)(const void *)((const char *)tg_stats.workers[i] + offset);
        total += atomic_load_explicit(f, memory_order_relaxed);
    }
    return total;
}

#define SUM(field)   sum(offsetof(struct tg_worker_stats, field))
#define GAUGE(field) gauge(offsetof(struct tg_worker_stats, field))

/* ---- durable submissions: the spool, delivery, idempotency (one block, to move whole into the
 * declared metrics table) ---------------------------------------------------------------------- */

#define DLOAD(field) atomic_load(&tg_stats.durable.field)

/* Appends to buf at *n (cap bytes); false when it did not fit. */
__attribute__((format(printf, 4, 5))) static bool put(char *buf, size_t cap, size_t *n,
                                                      const char *fmt, ...)
{
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - *n) {
        return false;
    }
    *n += (size_t)w;
    return true;
}

static bool fsync_histogram(char *buf, size_t cap, size_t *n)
{
    uint64_t cum = 0;
    bool ok = put(buf, cap, n,
                  "# HELP tracegate_spool_fsync_seconds Time each fsync of the spool took.\n"
                  "# TYPE tracegate_spool_fsync_seconds histogram\n");

    for (size_t i = 0; ok && i <= TG_FSYNC_BUCKETS; i++) {
        cum += DLOAD(fsync_bucket[i]);
        if (i < TG_FSYNC_BUCKETS) {
            ok = put(buf, cap, n, "tracegate_spool_fsync_seconds_bucket{le=\"%g\"} %llu\n",
                     (double)tg_stats_fsync_bounds_us[i] / 1e6, (unsigned long long)cum);
        } else {
            ok = put(buf, cap, n, "tracegate_spool_fsync_seconds_bucket{le=\"+Inf\"} %llu\n",
                     (unsigned long long)cum);
        }
    }
    return ok && put(buf, cap, n,
                     "tracegate_spool_fsync_seconds_sum %.6f\n"
                     "tracegate_spool_fsync_seconds_count %llu\n",
                     (double)DLOAD(fsync_sum_us) / 1e6, (unsigned long long)cum);
}

static bool labelled(char *buf, size_t cap, size_t *n, const char *name, const char *label,
                     const char *const *values, const _Atomic uint64_t *counts, size_t k)
{
    bool ok = true;

    for (size_t i = 0; ok && i < k; i++) {
        ok = put(buf, cap, n, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                 (unsigned long long)atomic_load(&counts[i]));
    }
    return ok;
}

static bool durable_metrics(char *buf, size_t cap, size_t *n)
{
    static const char *const states[] = {"queued",   "delivering", "delivered",
                                         "rejected", "dead",       "unknown"};
    static const char *const outcomes[] = {"delivered", "duplicate", "rejected",
                                           "retry",     "unknown",   "dead"};
    static const char *const results[] = {"new", "replay", "conflict", "mismatch"};
    int health = DLOAD(health);
    int64_t oldest = DLOAD(oldest_open_ms);
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    bool ok;

    if (health == TG_SPOOL_OFF) {
        return true; /* no spool: no durable routes */
    }
    ok = put(buf, cap, n,
             "# HELP tracegate_spool_health The spool's condition: 1 for the one it is in.\n"
             "# TYPE tracegate_spool_health gauge\n"
             "tracegate_spool_health{state=\"ok\"} %d\n"
             "tracegate_spool_health{state=\"full\"} %d\n"
             "tracegate_spool_health{state=\"failed\"} %d\n"
             "# HELP tracegate_spool_records Records in the spool by state.\n"
             "# TYPE tracegate_spool_records gauge\n",
             health == TG_SPOOL_OK, health == TG_SPOOL_FULL, health == TG_SPOOL_FAILED);
    ok = ok && labelled(buf, cap, n, "tracegate_spool_records", "state", states,
                        tg_stats.durable.records, TG_SPOOL_STATE_N);
    ok = ok &&
         put(buf, cap, n,
             "# TYPE tracegate_spool_oldest_open_age_seconds gauge\n"
             "tracegate_spool_oldest_open_age_seconds %.3f\n"
             "# TYPE tracegate_spool_bytes gauge\n"
             "tracegate_spool_bytes %llu\n"
             "# TYPE tracegate_spool_disk_free_bytes gauge\n"
             "tracegate_spool_disk_free_bytes %llu\n"
             "# TYPE tracegate_spool_write_errors_total counter\n"
             "tracegate_spool_write_errors_total %llu\n"
             "# TYPE tracegate_durable_accepted_total counter\n"
             "tracegate_durable_accepted_total %llu\n",
             oldest > 0 && now_ms > oldest ? (double)(now_ms - oldest) / 1000.0 : 0.0,
             (unsigned long long)DLOAD(spool_bytes), (unsigned long long)DLOAD(disk_free_bytes),
             (unsigned long long)DLOAD(write_errors), (unsigned long long)DLOAD(accepted));
    ok = ok && fsync_histogram(buf, cap, n);
    ok = ok && put(buf, cap, n, "# TYPE tracegate_delivery_attempts_total counter\n");
    ok = ok && labelled(buf, cap, n, "tracegate_delivery_attempts_total", "outcome", outcomes,
                        tg_stats.durable.attempts, TG_ATTEMPT_OUTCOMES);
    ok = ok &&
         put(buf, cap, n,
             "# HELP tracegate_delivery_latency_seconds Acceptance to delivery.\n"
             "# TYPE tracegate_delivery_latency_seconds summary\n"
             "tracegate_delivery_latency_seconds_sum %.3f\n"
             "tracegate_delivery_latency_seconds_count %llu\n"
             "# TYPE tracegate_idempotency_total counter\n",
             (double)DLOAD(delivery_latency_sum_ms) / 1000.0, (unsigned long long)DLOAD(delivered));
    return ok && labelled(buf, cap, n, "tracegate_idempotency_total", "result", results,
                          tg_stats.durable.idempotency, TG_IDEM_RESULTS);
}

/* ---- end of the durable block ---------------------------------------------------------------- */

/* Prometheus text exposition, summed over the workers. */
static int metrics(struct tg_req *req)
{
    char buf[12288];
    int n =
        snprintf(buf, sizeof(buf),
                 "# HELP tracegate_requests_total Requests received.\n"
                 "# TYPE tracegate_requests_total counter\n"
                 "tracegate_requests_total %llu\n"
                 "# HELP tracegate_responses_total Responses by status class.\n"
                 "# TYPE tracegate_responses_total counter\n"
                 "tracegate_responses_total{class=\"2xx\"} %llu\n"
                 "tracegate_responses_total{class=\"3xx\"} %llu\n"
                 "tracegate_responses_total{class=\"4xx\"} %llu\n"
                 "tracegate_responses_total{class=\"5xx\"} %llu\n"
                 "tracegate_responses_total{class=\"499\"} %llu\n"
                 "# TYPE tracegate_upstream_timeouts_total counter\n"
                 "tracegate_upstream_timeouts_total %llu\n"
                 "# TYPE tracegate_upstream_errors_total counter\n"
                 "tracegate_upstream_errors_total %llu\n"
                 "# TYPE tracegate_upstream_calls_total counter\n"
                 "tracegate_upstream_calls_total %llu\n"
                 "# TYPE tracegate_bytes_in_total counter\n"
                 "tracegate_bytes_in_total %llu\n"
                 "# TYPE tracegate_bytes_out_total counter\n"
                 "tracegate_bytes_out_total %llu\n"
                 "# TYPE tracegate_requests_in_flight gauge\n"
                 "tracegate_requests_in_flight %lld\n"
                 "# TYPE tracegate_connections gauge\n"
                 "tracegate_connections %lld\n"
                 "# TYPE tracegate_conf_reloads_total counter\n"
                 "tracegate_conf_reloads_total %llu\n"
                 "# TYPE tracegate_conf_reload_failures_total counter\n"
                 "tracegate_conf_reload_failures_total %llu\n"
                 "# TYPE tracegate_draining gauge\n"
                 "tracegate_draining %d\n",
                 (unsigned long long)SUM(requests), (unsigned long long)SUM(status_2xx),
                 (unsigned long long)SUM(status_3xx), (unsigned long long)SUM(status_4xx),
                 (unsigned long long)SUM(status_5xx), (unsigned long long)SUM(client_closed),
                 (unsigned long long)SUM(timeouts), (unsigned long long)SUM(upstream_errors),
                 (unsigned long long)SUM(upstream_calls), (unsigned long long)SUM(bytes_in),
                 (unsigned long long)SUM(bytes_out), (long long)GAUGE(live),
                 (long long)GAUGE(connections), (unsigned long long)atomic_load(&tg_stats.reloads),
                 (unsigned long long)atomic_load(&tg_stats.reload_failures),
                 atomic_load(&tg_stats.draining) ? 1 : 0);

    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return TG_EINTERNAL;
    }
    size_t len = (size_t)n;
    if (!durable_metrics(buf, sizeof(buf), &len)) {
        return TG_EINTERNAL;
    }
    return answer(req, 200, "text/plain; version=0.0.4", buf);
}

static int health(struct tg_req *req)
{
    return answer(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Readiness fails as soon as a drain starts, so balancers stop sending work here; and while the
 * spool cannot take submissions (full, failed), so they go to a node that can. */
static int ready(struct tg_req *req)
{
    int spool = atomic_load(&tg_stats.durable.health);

    if (atomic_load(&tg_stats.draining)) {
        return answer(req, tg_err_http_status(TG_EDRAIN), "application/json",
                      "{\"status\":\"draining\"}");
    }
    if (spool == TG_SPOOL_FULL || spool == TG_SPOOL_FAILED) {
        return answer(req, tg_err_http_status(TG_ESPOOL), "application/json",
                      spool == TG_SPOOL_FULL ? "{\"status\":\"spool full\"}"
                                             : "{\"status\":\"spool failed\"}");
    }
    return answer(req, 200, "application/json", "{\"status\":\"ready\"}");
}

static const struct tg_local_conf locals[] = {
    {"health", health},
    {"ready", ready},
    {"metrics", metrics},
};

static int local_serve(struct tg_req *req)
{
    const struct tg_local_conf *lc = req->policy->handler_conf;

    return lc->serve(req);
}

/* The conf points at one of the static locals: nothing to free. */
static int local_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *what = NULL;
    int rc = tg_conf_get_str(rl->ctx, rl->obj, rl->jpath, "local", true, &what);

    if (rc != TG_OK) {
        return rc;
    }
    for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
        if (strcmp(what, locals[i].what) == 0) {
            *out = (void *)&locals[i]; /* read-only through handler_conf */
            return TG_OK;
        }
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "local"),
                         "unknown local handler %s: expected \"health\", \"ready\" or "
                         "\"metrics\"",
                         tg_jpos_quote(quoted, sizeof(quoted), what));
}

const struct tg_handler_ops tg_handler_local = {
    .key = "local",
    .load = local_load,
    .serve = local_serve,
};
