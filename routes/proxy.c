#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/upstream.h"
#include "routes/handler.h"
#include "routes/table.h"

#define URL_MAX 16384

long tg_proxy_target(const struct tg_req *req, char *out, size_t cap)
{
    const struct tg_route *r = req->route;
    const struct tg_route_match *m = req->match;
    const char *base = r->upstream->base_path;
    size_t base_len = strlen(base);
    size_t query_len = req->target_len - req->path_len;
    long n;

    if (base_len + 1 > cap) {
        return -1;
    }
    memcpy(out, base, base_len);
    if (r->upstream_path != NULL) {
        n = tg_route_expand(r->upstream_path, m, out + base_len, cap - base_len);
        if (n < 0) {
            return -1;
        }
    } else if (r->prefix && r->strip_prefix) {
        const char *rest = m->rest_len > 0 ? m->rest : "/";
        size_t rest_len = m->rest_len > 0 ? m->rest_len : 1;
        if (base_len + rest_len + 1 > cap) {
            return -1;
        }
        memcpy(out + base_len, rest, rest_len);
        n = (long)rest_len;
    } else {
        if (base_len + req->path_len + 1 > cap) {
            return -1;
        }
        memcpy(out + base_len, req->target, req->path_len);
        n = (long)req->path_len;
    }
    n += (long)base_len;
    if ((size_t)n + query_len + 1 > cap) {
        return -1;
    }
    memcpy(out + n, req->target + req->path_len, query_len);
    n += (long)query_len;
    out[n] = '\0';
    return n;
}

/* Copies the upstream's answer into req->resp, minus hop-by-hop and framing headers. */
static void take_answer(struct tg_req *req, struct tg_up_call *call)
{
    size_t pos = 0;
    const char *name;
    const char *value;
    const char *conn = NULL;
    size_t len;
    char *body;

    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        if (strcasecmp(name, "Connection") == 0) {
            conn = value;
        }
    }
    req->resp.status = tg_up_call_status(call);
    pos = 0;
    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        size_t nl = strlen(name);
        if (tg_header_is_hop_by_hop(name, nl, conn, conn == NULL ? 0 : strlen(conn)) ||
            tg_header_name_is(name, nl, "Content-Length") || tg_header_name_is(name, nl, "Date") ||
            tg_header_name_is(name, nl, "traceparent") ||
            tg_header_name_is(name, nl, req->conf->trace_header)) {
            continue;
        }
        tg_resp_add_headern(&req->resp, name, nl, value, strlen(value));
    }
    body = tg_up_call_take_body(call, &len);
    tg_resp_set_body(&req->resp, body, len);
}

static void proxy_done(void *arg, struct tg_up_call *call, int err)
{
    struct tg_req *req = arg;

    if (err == TG_OK) {
        take_answer(req, call);
    } else {
        req->err_detail = tg_up_call_detail(call);
        if (err == TG_ETOOBIG) {
            tg_req_fail_status(req, 502, TG_EUPSTREAM, "upstream response too large");
        } else {
            tg_req_fail(req, err, NULL);
        }
    }
    tg_req_complete(req);
}

static int proxy_serve(struct tg_req *req)
{
    const struct tg_route *r = req->route;
    const struct tg_upstream *u = r->upstream;
    struct tg_kv hdrs[TG_HEADER_FORWARD_MAX];
    char xff[TG_XFF_MAX];
    char url[URL_MAX]; /* on the stack: curl copies it, and this runs once per request */
    size_t ulen = strlen(u->url);
    long n;
    int rc;
    struct tg_up_request up = {
        .label = u->name,
        .method = req->method,
        .url = url,
        .hdrs = hdrs,
        .body = req->body,
        .body_len = req->body_len,
        .timeout_ms = r->upstream_timeout_ms > 0 ? r->upstream_timeout_ms : u->timeout_ms,
        .connect_timeout_ms = u->connect_timeout_ms,
        .max_body = req->conf->max_response_bytes,
        .limit_key = u->name,
        .max_in_flight = u->max_in_flight,
    };

    memcpy(url, u->url, ulen);
    n = tg_proxy_target(req, url + ulen, URL_MAX - ulen);
    if (n < 0) {
        req->err_detail = "upstream url too long";
        return TG_EINVAL;
    }
    up.n_hdrs = tg_header_forward(req, hdrs, xff);
    rc = tg_up_start(req->up, req, &up, proxy_done, req, NULL);
    if (rc == TG_ETIMEDOUT) {
        req->err_detail = "no budget left for the upstream call";
    } else if (rc == TG_EOVERLOAD) {
        /* Shed at once rather than queue behind a backend that already has its fill. */
        tg_req_fail(req, rc, "upstream at max_in_flight");
        tg_resp_add_header(&req->resp, "Retry-After", "1");
        return TG_MW_DONE;
    }
    return rc == TG_OK ? TG_MW_ASYNC : rc;
}

const struct tg_handler_ops tg_handler_proxy = {
    .kind = "proxy",
    .serve = proxy_serve,
};
