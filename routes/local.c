/* The local handler: answers the gateway makes itself (health, readiness, metrics). */
#include "routes/local.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/buf.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "routes/table.h"

/* Answers status with body (steals it; NULL: out of memory). */
static int answer_owned(struct tg_req *req, int status, const char *ctype, char *body, size_t len)
{
    if (body == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = status;
    tg_resp_set_body(&req->resp, body, len);
    tg_resp_add_header(&req->resp, "Content-Type", ctype);
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    return TG_MW_DONE;
}

static int answer(struct tg_req *req, int status, const char *ctype, const char *text)
{
    return answer_owned(req, status, ctype, strdup(text), strlen(text));
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

static int pool_metrics(const struct tg_conf *conf, struct tg_buf *out);

/* Prometheus text exposition, summed over the workers, then the upstream pools. */
static int metrics(struct tg_req *req)
{
    struct tg_buf out = {0};
    char *body;
    size_t len;
    char buf[4096];
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
    if (tg_buf_append(&out, buf, (size_t)n) != TG_OK || pool_metrics(req->conf, &out) != TG_OK) {
        tg_buf_cleanup(&out);
        return TG_ENOMEM;
    }
    body = tg_buf_steal(&out, &len);
    return answer_owned(req, 200, "text/plain; version=0.0.4", body, len);
}

static int health(struct tg_req *req)
{
    return answer(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Readiness fails as soon as a drain starts, so balancers stop sending work here, and while an
 * upstream the conf's ready.requires names has no usable target, so an orchestrator stops
 * sending patients to a gateway whose questionnaire service is gone. */
static int ready(struct tg_req *req)
{
    const struct tg_conf *conf = req->conf;
    uint64_t now = tg_now_us();
    json_t *down = NULL, *body;
    char *text;

    if (atomic_load(&tg_stats.draining)) {
        return answer(req, tg_err_http_status(TG_EDRAIN), "application/json",
                      "{\"status\":\"draining\"}");
    }
    for (size_t i = 0; i < conf->n_ready_requires; i++) {
        const struct tg_upstream *u = conf->ready_requires[i];
        if (tg_pool_usable_count(u, now) > 0) {
            continue;
        }
        if (down == NULL && (down = json_array()) == NULL) {
            return TG_ENOMEM;
        }
        json_array_append_new(down, json_string(u->name));
    }
    if (down == NULL) {
        return answer(req, 200, "application/json", "{\"status\":\"ready\"}");
    }
    body = json_pack("{s:s, s:o}", "status", "not ready", "unavailable", down);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return answer_owned(req, tg_err_http_status(TG_EUNSTABLE), "application/json", text,
                        text != NULL ? strlen(text) : 0);
}

/* ---- upstream pools ------------------------------------------------------------------------
 * One block, declared once per metric: the counters of struct tg_pool_stats and
 * tg_target_stats (gateway/stats.h) and the state gauges of gateway/pool.h, labelled by
 * upstream and target. The state lives in the pools, shared by every worker and kept across
 * reloads, so these are read as they are (no sum over workers). */

enum metric_kind {
    PER_UPSTREAM = 0,
    PER_TARGET = 1,
};

/* One series: a counter at offset off in the stats, or a gauge that value computes. */
struct pool_metric {
    const char *name;
    const char *type;
    const char *help;
    enum metric_kind kind;
    const char *label; /* an extra label="value", or NULL */
    size_t off;        /* in struct tg_pool_stats or tg_target_stats; SIZE_MAX: a gauge */
    double (*value)(const struct tg_upstream *u, size_t i, uint64_t now);
};

static double g_in_flight(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)i;
    (void)now;
    return atomic_load_explicit(&u->pool->in_flight, memory_order_relaxed);
}

static double g_unstable(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)i;
    (void)now;
    return atomic_load_explicit(&u->pool->unstable, memory_order_relaxed) ? 1 : 0;
}

static double g_drop_ratio(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)i;
    return tg_breaker_ratio(&u->pool->breaker, &u->breaker, now);
}

static double g_target_in_flight(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)now;
    return atomic_load_explicit(&u->targets[i].state->active, memory_order_relaxed);
}

static double g_ejected(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return atomic_load_explicit(&u->targets[i].state->ejected_until_us, memory_order_relaxed) > now
               ? 1
               : 0;
}

static double g_healthy(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)now;
    return atomic_load_explicit(&u->targets[i].state->down, memory_order_relaxed) ? 0 : 1;
}

static double g_usable(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return tg_pool_usable(u, i, now) ? 1 : 0;
}

#define POOL_STAT(f)   offsetof(struct tg_pool_stats, f), NULL
#define TARGET_STAT(f) offsetof(struct tg_target_stats, f), NULL
#define POOL_GAUGE(fn) SIZE_MAX, fn

static const struct pool_metric pool_metrics_table[] = {
    {"tracegate_upstream_requests_total", "counter",
     "Calls asked of an upstream (each makes one or more attempts).", PER_UPSTREAM, NULL,
     POOL_STAT(calls)},
    {"tracegate_upstream_retries_total", "counter", "Attempts after a call's first.", PER_UPSTREAM,
     NULL, POOL_STAT(retries)},
    {"tracegate_upstream_retries_refused_total", "counter",
     "Retries the retry budget did not allow.", PER_UPSTREAM, NULL, POOL_STAT(retries_refused)},
    {"tracegate_upstream_rejected_total", "counter", "Calls refused at once with 503, by reason.",
     PER_UPSTREAM, "reason=\"breaker\"", POOL_STAT(rejected_breaker)},
    {"tracegate_upstream_rejected_total", NULL, NULL, PER_UPSTREAM, "reason=\"no_target\"",
     POOL_STAT(rejected_no_target)},
    {"tracegate_upstream_rejected_total", NULL, NULL, PER_UPSTREAM, "reason=\"max_in_flight\"",
     POOL_STAT(rejected_overload)},
    {"tracegate_upstream_in_flight", "gauge", "Calls in flight, all workers.", PER_UPSTREAM, NULL,
     POOL_GAUGE(g_in_flight)},
    {"tracegate_upstream_unstable", "gauge",
     "1 while the upstream is marked unstable (breaker throttling or no usable target).",
     PER_UPSTREAM, NULL, POOL_GAUGE(g_unstable)},
    {"tracegate_upstream_breaker_drop_ratio", "gauge",
     "Probability that the breaker refuses a call now.", PER_UPSTREAM, NULL,
     POOL_GAUGE(g_drop_ratio)},
    {"tracegate_upstream_attempts_total", "counter", "Attempts sent to a target.", PER_TARGET, NULL,
     TARGET_STAT(attempts)},
    {"tracegate_upstream_failures_total", "counter", "Failed attempts, by kind.", PER_TARGET,
     "kind=\"status\"", TARGET_STAT(failed_status)},
    {"tracegate_upstream_failures_total", NULL, NULL, PER_TARGET, "kind=\"connect\"",
     TARGET_STAT(failed_connect)},
    {"tracegate_upstream_failures_total", NULL, NULL, PER_TARGET, "kind=\"reset\"",
     TARGET_STAT(failed_reset)},
    {"tracegate_upstream_failures_total", NULL, NULL, PER_TARGET, "kind=\"timeout\"",
     TARGET_STAT(failed_timeout)},
    {"tracegate_upstream_backpressure_total", "counter", "429 answers (not failures).", PER_TARGET,
     NULL, TARGET_STAT(backpressure)},
    {"tracegate_upstream_ejections_total", "counter", "Times a target was ejected.", PER_TARGET,
     NULL, TARGET_STAT(ejections)},
    {"tracegate_upstream_health_checks_total", "counter", "Active health checks, by result.",
     PER_TARGET, "result=\"pass\"", TARGET_STAT(checks_passed)},
    {"tracegate_upstream_health_checks_total", NULL, NULL, PER_TARGET, "result=\"fail\"",
     TARGET_STAT(checks_failed)},
    {"tracegate_upstream_target_in_flight", "gauge", "Attempts in flight to a target.", PER_TARGET,
     NULL, POOL_GAUGE(g_target_in_flight)},
    {"tracegate_upstream_target_ejected", "gauge", "1 while a target is ejected.", PER_TARGET, NULL,
     POOL_GAUGE(g_ejected)},
    {"tracegate_upstream_healthy", "gauge", "0 while health checks hold a target down.", PER_TARGET,
     NULL, POOL_GAUGE(g_healthy)},
    {"tracegate_upstream_target_usable", "gauge", "1 while a target may get calls.", PER_TARGET,
     NULL, POOL_GAUGE(g_usable)},
};

static int appendf(struct tg_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int appendf(struct tg_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return TG_EINTERNAL;
    }
    return tg_buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static double metric_value(const struct pool_metric *m, const struct tg_upstream *u, size_t i,
                           uint64_t now)
{
    const void *stats = m->kind == PER_UPSTREAM ? (const void *)&u->pool->stats
                                                : (const void *)&u->targets[i].state->stats;

    if (m->value != NULL) {
        return m->value(u, i, now);
    }
    return (double)atomic_load_explicit(
        (const _Atomic uint64_t *)(const void *)((const char *)stats + m->off),
        memory_order_relaxed);
}

/* One line: name{upstream="U"[,target="T"][,extra]} value. Names and urls are checked conf
 * text: no quote or backslash to escape. */
static int metric_line(struct tg_buf *out, const struct pool_metric *m, const struct tg_upstream *u,
                       size_t i, uint64_t now)
{
    return appendf(out, "%s{upstream=\"%s\"%s%s%s%s%s} %.17g\n", m->name, u->name,
                   m->kind == PER_TARGET ? ",target=\"" : "",
                   m->kind == PER_TARGET ? u->targets[i].url : "",
                   m->kind == PER_TARGET ? "\"" : "", m->label != NULL ? "," : "",
                   m->label != NULL ? m->label : "", metric_value(m, u, i, now));
}

static int pool_metrics(const struct tg_conf *conf, struct tg_buf *out)
{
    uint64_t now = tg_now_us();
    int rc = TG_OK;

    for (size_t k = 0; k < sizeof(pool_metrics_table) / sizeof(pool_metrics_table[0]); k++) {
        const struct pool_metric *m = &pool_metrics_table[k];
        if (m->type != NULL) {
            rc = rc != TG_OK ? rc
                             : appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help,
                                       m->name, m->type);
        }
        for (size_t j = 0; rc == TG_OK && j < conf->n_upstreams; j++) {
            const struct tg_upstream *u = &conf->upstreams[j];
            size_t n = m->kind == PER_TARGET ? u->n_targets : 1;
            for (size_t i = 0; rc == TG_OK && i < n; i++) {
                rc = metric_line(out, m, u, i, now);
            }
        }
    }
    return rc;
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
