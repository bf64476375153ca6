#include "middleware/rate_limit.h"

#include <stdio.h>
#include <string.h>

#include "auth/principal.h"
#include "gateway/err.h"
#include "gateway/ratelimit.h"
#include "gateway/stats.h"

static int rate_on_headers(struct tg_req *req)
{
    struct tg_ratelimit *rl = req->policy->rate_limit;
    const struct tg_principal *pr;
    const char *key = req->client_ip;
    unsigned retry = 1;
    char after[16];

    if (rl == NULL) {
        return TG_MW_NEXT;
    }
    pr = req->policy->rate_by_client ? NULL : tg_principal_get(req);
    if (pr != NULL && pr->sub != NULL) {
        key = pr->sub;
    }
    if (tg_ratelimit_take(rl, key, strlen(key), tg_now_us(), &retry)) {
        return TG_MW_NEXT;
    }
    tg_req_fail(req, TG_ERATELIMIT, NULL);
    if (req->stats != NULL) {
        TG_STAT_ADD(req->stats, rate_limited, 1);
    }
    req->end.detail =
        pr != NULL && pr->sub != NULL ? "rate limit (subject)" : "rate limit (client)";
    snprintf(after, sizeof(after), "%u", retry);
    tg_resp_add_header(&req->resp, "Retry-After", after);
    return TG_MW_DONE;
}

const struct tg_mw_ops tg_mw_rate_limit = {
    .name = "rate_limit",
    .on_headers = rate_on_headers,
};
