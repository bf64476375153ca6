#include "gateway/stats.h"

#include <string.h>

#include "gateway/metrics.h"
#include "gateway/req.h"

struct tg_stats_registry tg_stats;

const uint64_t tg_stats_fsync_bounds_us[TG_FSYNC_BUCKETS] = {
    50, 100, 200, 300, 500, 750, 1000, 2000, 3000, 5000, 10000, 25000, 100000, 1000000,
};

void tg_stats_observe_fsync(uint64_t us)
{
    size_t i = 0;

    while (i < TG_FSYNC_BUCKETS && us > tg_stats_fsync_bounds_us[i]) {
        i++;
    }
    atomic_fetch_add(&tg_stats.durable.fsync_bucket[i], 1);
    atomic_fetch_add(&tg_stats.durable.fsync_sum_us, us);
}

const char *tg_stats_class(int status)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

    if (status == 499) {
        return "499";
    }
    if (status < 100 || status > 599) {
        return "5xx";
    }
    return classes[status / 100 - 1];
}

/* The method as a label: the common ones by name, anything else as one value, so a client
 * cannot grow the series table with made-up methods (OpenTelemetry's _OTHER). */
static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                                        "PATCH", "OPTIONS", "TRACE", "CONNECT"};

    for (size_t i = 0; m != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(m, known[i]) == 0) {
            return known[i];
        }
    }
    return "_OTHER";
}

void tg_stats_count_end(struct tg_worker_stats *st, const struct tg_req *req)
{
    const struct tg_req_end *end = &req->end;
    int status = end->status;
    const char *labels[3];

    if (status == 499) {
        TG_STAT_ADD(st, client_closed, 1);
    } else if (status >= 500) {
        TG_STAT_ADD(st, status_5xx, 1);
        if (status == 504) {
            TG_STAT_ADD(st, timeouts, 1);
        } else if (status == 502) {
            TG_STAT_ADD(st, upstream_errors, 1);
        }
    } else if (status >= 400) {
        TG_STAT_ADD(st, status_4xx, 1);
    } else if (status >= 300) {
        TG_STAT_ADD(st, status_3xx, 1);
    } else {
        TG_STAT_ADD(st, status_2xx, 1);
    }
    TG_STAT_ADD(st, bytes_in, end->bytes_in);
    TG_STAT_ADD(st, bytes_out, end->bytes_out);
    /* The route's name, never the path: paths carry patient ids, and every path would be a
     * series of its own. No route (404, 400 before routing): the empty value. */
    labels[0] = req->policy != NULL ? req->policy->name : "";
    labels[1] = method_label(req->method);
    labels[2] = tg_stats_class(status);
    tg_metric_observe(st, TG_M_REQUEST_DURATION, labels, end->duration_us);
}

void tg_stats_cleanup(struct tg_worker_stats *st)
{
    tg_series_cleanup(&st->series);
}
