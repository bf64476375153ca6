#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/stats.h"
#include "routes/handler.h"
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
    return answer(req, 200, "text/plain; version=0.0.4", buf);
}

static int local_serve(struct tg_req *req)
{
    const char *what = req->route->local;

    if (strcmp(what, "health") == 0) {
        return answer(req, 200, "application/json", "{\"status\":\"ok\"}");
    }
    if (strcmp(what, "ready") == 0) {
        /* Readiness fails as soon as a drain starts, so balancers stop sending work here. */
        if (atomic_load(&tg_stats.draining)) {
            return answer(req, 503, "application/json", "{\"status\":\"draining\"}");
        }
        return answer(req, 200, "application/json", "{\"status\":\"ready\"}");
    }
    if (strcmp(what, "metrics") == 0) {
        return metrics(req);
    }
    return TG_ENOROUTE;
}

const struct tg_handler_ops tg_handler_local = {
    .kind = "local",
    .serve = local_serve,
};
