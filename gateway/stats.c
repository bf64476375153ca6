#include "gateway/stats.h"

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

void tg_stats_count_end(struct tg_worker_stats *st, const struct tg_req_end *end)
{
    int status = end->status;

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
}
