#include "middleware/access_log.h"

#include "gateway/err.h"
#include "gateway/log.h"

/* One line per request once its end is decided. The query string is left out on purpose:
 * clients put names and dates of birth there. */
static void access_on_done(struct tg_req *req)
{
    const struct tg_req_end *e = &req->end;
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_INFO, req, "request.done");
    tg_logline_str(&l, "method", req->method);
    tg_logline_strn(&l, "path", req->target, req->path_len);
    tg_logline_str(&l, "route", req->policy != NULL ? req->policy->name : NULL);
    tg_logline_int(&l, "status", e->status);
    if (e->upstream_status > 0) {
        tg_logline_int(&l, "upstream_status", e->upstream_status);
    }
    tg_logline_ms(&l, "duration_ms", (double)e->duration_us / 1000.0);
    if (e->upstream_us > 0) {
        tg_logline_ms(&l, "upstream_ms", (double)e->upstream_us / 1000.0);
    }
    tg_logline_int(&l, "bytes_in", (int64_t)e->bytes_in);
    tg_logline_int(&l, "bytes_out", (int64_t)e->bytes_out);
    tg_logline_str(&l, "client", req->client_ip);
    if (e->err != TG_OK) {
        tg_logline_str(&l, "err", tg_strerror(e->err));
        tg_logline_str(&l, "reason", e->detail);
    }
    if (e->backend != NULL) {
        tg_logline_str(&l, "backend", e->backend);
    }
    if (e->client_gone) {
        tg_logline_bool(&l, "client_gone", 1);
    }
    tg_logline_end(&l);
}

const struct tg_mw_ops tg_mw_access_log = {
    .name = "access_log",
    .on_done = access_on_done,
};
