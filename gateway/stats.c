#include "gateway/stats.h"

#include "gateway/req.h"

struct tg_stats_registry tg_stats;

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
