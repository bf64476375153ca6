/* The local handler: answers the gateway makes itself (health, readiness, metrics). */
#include "routes/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/issuer.h"
#include "gateway/audit.h"
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

/* Security (issue 14): refusals by kind, audit records written and dropped. Returns the length
 * written into buf (cap bytes), or -1 when it does not fit. */
static int security_metrics(const struct tg_req *req, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "# HELP tracegate_auth_denied_total Requests refused by reason.\n"
                     "# TYPE tracegate_auth_denied_total counter\n"
                     "tracegate_auth_denied_total{reason=\"invalid_token\"} %llu\n"
                     "tracegate_auth_denied_total{reason=\"insufficient_scope\"} %llu\n"
                     "tracegate_auth_denied_total{reason=\"rate_limited\"} %llu\n"
                     "# TYPE tracegate_audit_records_total counter\n"
                     "tracegate_audit_records_total %llu\n"
                     "# TYPE tracegate_audit_dropped_total counter\n"
                     "tracegate_audit_dropped_total %llu\n",
                     (unsigned long long)SUM(auth_denied), (unsigned long long)SUM(forbidden),
                     (unsigned long long)SUM(rate_limited), (unsigned long long)SUM(audit_records),
                     (unsigned long long)tg_audit_sink_dropped(req->conf->audit_sink));

    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Prometheus text exposition, summed over the workers. */
static int metrics(struct tg_req *req)
{
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
    n = security_metrics(req, buf + n, sizeof(buf) - (size_t)n);
    if (n < 0) {
        return TG_EINTERNAL;
    }
    return answer(req, 200, "text/plain; version=0.0.4", buf);
}

static int health(struct tg_req *req)
{
    return answer(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Readiness fails as soon as a drain starts, so balancers stop sending work here, and until
 * every token issuer has its first key set. */
static int ready(struct tg_req *req)
{
    if (atomic_load(&tg_stats.draining)) {
        return answer(req, tg_err_http_status(TG_EDRAIN), "application/json",
                      "{\"status\":\"draining\"}");
    }
    if (!tg_auth_is_ready(req->conf->auth)) {
        return answer(req, tg_err_http_status(TG_EOVERLOAD), "application/json",
                      "{\"status\":\"waiting for signing keys\"}");
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
