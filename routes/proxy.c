/* The proxy handler: one upstream call per request, its answer passed on as it came (minus
 * hop-by-hop and framing headers). Bodies above limits.stream_above_bytes, or of unknown
 * length, stream (gateway/stream.h): a request body goes to the upstream as it arrives, an
 * answer's body to the client as it comes; memory stays one ring per direction. */
#include "routes/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/stream.h"
#include "gateway/upstream.h"
#include "routes/durable.h"
#include "routes/handler.h"
#include "routes/table.h"

static const char *const proxy_keys[] = {
    "upstream_path", "strip_prefix", "upstream_timeout_ms",    "retry",
    "durable",       "stream",       "stream_idle_timeout_ms", NULL,
};

long tg_proxy_target(const struct tg_req *req, char *out, size_t cap)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;
    const struct tg_route_match *m = req->match;
    const char *base = pc->upstream->base_path;
    size_t base_len = strlen(base);
    size_t query_len = req->target_len - req->path_len;
    long n;

    if (base_len + 1 > cap) {
        return -1;
    }
    memcpy(out, base, base_len);
    if (pc->upstream_path != NULL) {
        n = tg_route_expand(pc->upstream_path, m, out + base_len, cap - base_len);
        if (n < 0) {
            return -1;
        }
    } else if (m->route->prefix && pc->strip_prefix) {
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

/* Copies the upstream's status and headers into req->resp, minus hop-by-hop and framing
 * headers. A HEAD answer keeps its Content-Length: it is the length of the body a GET would
 * get, and the server sends it as the answer's length. */
static void take_head(struct tg_req *req, struct tg_up_call *call)
{
    bool head = strcmp(req->method, "HEAD") == 0;
    size_t pos = 0;
    const char *name;
    const char *value;
    const char *conn = NULL;

    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        if (strcasecmp(name, "Connection") == 0) {
            conn = value;
        }
    }
    req->resp.status = tg_up_call_status(call);
    pos = 0;
    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        size_t nl = strlen(name);
        /* a HEAD answer keeps the length the GET would have */
        bool keep_length = head && tg_header_name_is(name, nl, "Content-Length");
        if (!keep_length &&
            !tg_header_passes_back(req->conf, name, nl, conn, conn == NULL ? 0 : strlen(conn))) {
            continue;
        }
        tg_resp_add_headern(&req->resp, name, nl, value, strlen(value));
    }
}

/* The whole answer: its head, and the body the call held. */
static void take_answer(struct tg_req *req, struct tg_up_call *call)
{
    size_t len;
    char *body;

    take_head(req, call);
    body = tg_up_call_take_body(call, &len);
    tg_resp_set_body(&req->resp, body, len);
}

static void stream_dispose(void *p)
{
    tg_stream_cleanup(p);
}

/* Whether an answer of length (-1 unknown) streams on this route. */
static bool answer_streams(const struct tg_req *req, int64_t length)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;

    return pc->stream && strcmp(req->method, "HEAD") != 0 && length != 0 &&
           (length < 0 || (uint64_t)length > req->conf->stream_above_bytes);
}

/* The call's head hook: an answer that streams goes to the client now, its head first; its body
 * follows through the ring the call fills. One the retry rules could still retry is held
 * whole, as is any answer when out of memory. */
static struct tg_stream *proxy_head(void *arg, struct tg_up_call *call, int status, int64_t length)
{
    struct tg_req *req = arg;
    struct tg_stream *s;

    if (status == 204 || status == 304 || !answer_streams(req, length) ||
        tg_up_call_may_retry(call, status)) {
        return NULL;
    }
    s = tg_req_alloc(req, NULL, sizeof(*s), stream_dispose);
    if (s == NULL || tg_stream_init(s, req->conf->stream_buffer_bytes, length) != TG_OK) {
        return NULL;
    }
    take_head(req, call);
    req->resp.stream = s;
    tg_req_complete(req);
    return s;
}

static void proxy_done(void *arg, struct tg_up_call *call, int err)
{
    struct tg_req *req = arg;
    unsigned retry_after = tg_up_call_retry_after_s(call);

    if (req->resp.stream != NULL) {
        /* The answer streamed: the call ended or stopped its ring. Its status is out already;
         * a failure cuts the body (the client sees it short) and the log says why. A client
         * that left makes it a 499 (tg_req_end). */
        if (err != TG_OK) {
            req->end.err = err;
            req->end.detail = tg_up_call_detail(call);
            req->end.truncated = err != TG_ECANCELED;
        }
        return;
    }
    if (err == TG_OK) {
        take_answer(req, call);
    } else {
        tg_req_fail(req, err, tg_up_call_detail(call));
    }
    if (err != TG_OK && retry_after > 0) {
        /* refused at once (bulkhead, breaker, no usable target): when to come back */
        char s[16];
        snprintf(s, sizeof(s), "%u", retry_after);
        tg_resp_add_header(&req->resp, "Retry-After", s);
    }
    tg_req_complete(req);
}

/* The one call ends with err now (its done settles the answer and completes). */
static void proxy_cancel(struct tg_req *req, int err)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;

    if (pc->durable != NULL) {
        tg_durable_cancel(req, err);
        return;
    }
    tg_up_cancel_req(req, err);
}

static int proxy_serve(struct tg_req *req)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;
    const struct tg_upstream *u = pc->upstream;
    struct tg_kv hdrs[TG_HEADER_FORWARD_MAX];
    char xff[TG_XFF_MAX];
    char path[TG_URL_MAX]; /* on the stack: the call copies it, and this runs once per request */
    int rc;
    struct tg_up_request up = {
        .label = u->name,
        .method = req->method,
        .upstream = u,
        .path = path,
        .retry = &pc->retry,
        .hdrs = hdrs,
        .body = req->body.data,
        .body_len = req->body.len,
        .body_stream = req->body_stream,
        .head = pc->stream ? proxy_head : NULL,
        .idle_ms = pc->stream_idle_timeout_ms > 0 ? pc->stream_idle_timeout_ms
                                                  : req->conf->stream_idle_timeout_ms,
        .timeout_ms = pc->upstream_timeout_ms > 0 ? pc->upstream_timeout_ms : u->timeout_ms,
        .connect_timeout_ms = u->connect_timeout_ms,
        .max_body = req->conf->max_response_bytes,
        .quiet_success = true,
    };

    if (pc->durable != NULL) {
        return tg_durable_serve(req); /* stored first, delivered from the spool */
    }
    if (tg_proxy_target(req, path, sizeof(path)) < 0) {
        return tg_req_fail(req, TG_EINVAL, "upstream url too long");
    }
    up.n_hdrs = tg_header_forward(req, hdrs, xff);
    rc = tg_up_start(req->up, req, &up, proxy_done, req, NULL);
    if (rc == TG_ETIMEDOUT) {
        return tg_req_fail(req, rc, "no budget left for the upstream call");
    }
    return rc == TG_OK ? TG_MW_ASYNC : rc;
}

/* A request body streams past limits.stream_above_bytes. A chunked one shorter than that is
 * held whole and goes with a Content-Length, as before streaming: an upstream sees chunked
 * bodies only when they are large. */
static size_t proxy_stream_body_above(const struct tg_req *req)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;

    return pc->stream ? req->conf->stream_above_bytes : SIZE_MAX;
}

static void proxy_cleanup(void *conf)
{
    struct tg_proxy_conf *pc = conf;

    if (pc != NULL) {
        free(pc->upstream_path);
        tg_durable_free(pc->durable);
        free(pc);
    }
}

/* upstream_path: only on exact routes (on a prefix route it would replace the whole path, and
 * what follows the prefix would be lost), a template of the route's parameters. */
static int load_upstream_path(const struct tg_route_load *rl, struct tg_proxy_conf *pc)
{
    char path[TG_JPATH_MAX];
    const char *up_path = NULL;
    int rc = tg_conf_get_str(rl->ctx, rl->obj, rl->jpath, "upstream_path", false, &up_path);

    if (rc != TG_OK || up_path == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "upstream_path");
    if (rl->route->prefix) {
        return tg_conf_error(rl->ctx, path,
                             "upstream_path is only for exact routes (a prefix "
                             "route forwards the client path, or with "
                             "strip_prefix the part after the prefix)");
    }
    rc = tg_route_check_template(rl, path, "upstream_path", up_path, false);
    if (rc != TG_OK) {
        return rc;
    }
    pc->upstream_path = strdup(up_path);
    return pc->upstream_path == NULL ? TG_ENOMEM : TG_OK;
}

static int proxy_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX];
    struct tg_proxy_conf *pc = calloc(1, sizeof(*pc));
    int rc;

    if (pc == NULL) {
        return TG_ENOMEM;
    }
    *out = pc; /* freed with the route from here on */
    rc = tg_route_get_upstream(rl, rl->obj, rl->jpath, &pc->upstream);
    rc = rc != TG_OK ? rc : load_upstream_path(rl, pc);
    rc = rc != TG_OK ? rc : tg_route_get_retry(rl, &pc->retry);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, rl->obj, rl->jpath, "upstream_timeout_ms", 0,
                                            TG_CONF_HOUR_MS, &pc->upstream_timeout_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_bool(rl->ctx, rl->obj, rl->jpath, "strip_prefix", &pc->strip_prefix);
    rc = rc != TG_OK ? rc : tg_durable_load(rl, &pc->durable);
    /* A durable route stores the whole body before it answers: it never streams. */
    pc->stream = pc->durable == NULL;
    rc = rc != TG_OK ? rc : tg_conf_get_bool(rl->ctx, rl->obj, rl->jpath, "stream", &pc->stream);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, rl->obj, rl->jpath, "stream_idle_timeout_ms",
                                            0, TG_CONF_HOUR_MS, &pc->stream_idle_timeout_ms);
    if (rc == TG_OK && pc->durable != NULL && pc->stream) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "stream"),
                             "a durable route stores whole bodies: it cannot stream");
    }
    if (rc != TG_OK || !pc->strip_prefix || rl->route->prefix) {
        return rc;
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "strip_prefix"),
                         "strip_prefix needs a prefix route (a path ending in \"/*\")");
}

static int proxy_link(const struct tg_route_load *rl, void *conf, const struct tg_route_table *t)
{
    struct tg_proxy_conf *pc = conf;

    return pc->durable != NULL ? tg_durable_link(rl, pc->durable, t) : TG_OK;
}

const struct tg_handler_ops tg_handler_proxy = {
    .key = "upstream",
    .keys = proxy_keys,
    .load = proxy_load,
    .cleanup = proxy_cleanup,
    .link = proxy_link,
    .serve = proxy_serve,
    .cancel = proxy_cancel,
    .stream_body_above = proxy_stream_body_above,
};
