#include "middleware/access_log.h"

#include "gateway/err.h"
#include "gateway/log.h"

static int access_on_request(struct tg_req *req)
{
    (void)req;
    return TG_MW_NEXT;
}

/* The query string is left out on purpose: clients put names and dates of birth there. */
static void access_on_response(struct tg_req *req)
{
    struct tg_logline l;
    int status = req->client_gone && req->cancelled ? 499 : req->resp.status;
    uint64_t us = tg_now_us() - req->start_us;

    tg_logline_begin(&l, TG_LOG_INFO, req, "request.done");
    tg_logline_str(&l, "method", req->method);
    tg_logline_strn(&l, "path", req->target, req->path_len);
    tg_logline_str(&l, "route", req->route_name);
    tg_logline_int(&l, "status", status);
    if (req->upstream_status > 0) {
        tg_logline_int(&l, "upstream_status", req->upstream_status);
    }
    tg_logline_ms(&l, "duration_ms", (double)us / 1000.0);
    if (req->upstream_us > 0) {
        tg_logline_ms(&l, "upstream_ms", (double)req->upstream_us / 1000.0);
    }
    tg_logline_int(&l, "bytes_in", (int64_t)req->bytes_in);
    tg_logline_int(&l, "bytes_out", (int64_t)req->bytes_out);
    tg_logline_str(&l, "client", req->client_ip);
    if (req->err != TG_OK) {
        tg_logline_str(&l, "err", tg_strerror(req->err));
        tg_logline_str(&l, "reason", req->err_detail);
    }
    if (req->client_gone) {
        tg_logline_bool(&l, "client_gone", 1);
    }
    tg_logline_end(&l);
}

const struct tg_mw_ops tg_mw_access_log = {
    .name = "access_log",
    .on_request = access_on_request,
    .on_response = access_on_response,
};
