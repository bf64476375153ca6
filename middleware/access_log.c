#include "middleware/access_log.h"

#include <string.h>

#include "gateway/err.h"
#include "gateway/log.h"

#define UA_LOG_MAX 256 /* a user agent longer than this is cut */

/* What joins this line to the other systems' logs: the W3C trace id when the id on the line is
 * a plain one, the client's span, and who asked, how. */
static void join_fields(struct tg_logline *l, const struct tg_req *req)
{
    size_t ua_len = 0;
    const char *ua = tg_req_header(req, "User-Agent", &ua_len);
    const char *host = tg_req_header(req, "Host", NULL);

    if (req->trace.w3c[0] != '\0' && strcmp(req->trace.w3c, req->trace.id) != 0) {
        tg_logline_str(l, "w3c_trace_id", req->trace.w3c);
    }
    if (req->trace.parent[0] != '\0') {
        tg_logline_str(l, "parent_span_id", req->trace.parent);
    }
    tg_logline_str(l, "protocol", req->version);
    tg_logline_str(l, "host", host);
    if (ua != NULL) {
        tg_logline_strn(l, "user_agent", ua, ua_len < UA_LOG_MAX ? ua_len : UA_LOG_MAX);
    }
}

/* One line per request once its end is decided, warn for a 5xx. The query string is left out
 * on purpose: clients put names and dates of birth there; routes with log_path "pattern" log
 * the pattern, since their paths name patients too. */
static void access_on_done(struct tg_req *req)
{
    const struct tg_req_end *e = &req->end;
    const struct tg_policy *p = req->policy;
    struct tg_logline l;

    if (p != NULL && !p->access_log) {
        return;
    }
    tg_logline_begin(&l, e->status >= 500 ? TG_LOG_WARN : TG_LOG_INFO, req, "request.done");
    tg_logline_str(&l, "method", req->method);
    if (p != NULL && p->log_pattern) {
        tg_logline_str(&l, "path", p->path);
    } else {
        tg_logline_strn(&l, "path", req->target, req->path_len);
    }
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
    join_fields(&l, req);
    if (e->attempts > 0) {
        tg_logline_str(&l, "upstream_addr", e->upstream_addr[0] != '\0' ? e->upstream_addr : NULL);
        tg_logline_int(&l, "attempts", e->attempts);
        tg_logline_str(&l, "upstream_span_id", e->upstream_span);
    }
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
    if (e->truncated) {
        tg_logline_bool(&l, "truncated", 1);
    }
    tg_logline_end(&l);
}

const struct tg_mw_ops tg_mw_access_log = {
    .name = "access_log",
    .on_done = access_on_done,
};
