#include "middleware/span.h"

#include <stdio.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/span.h"
#include "gateway/stats.h"
#include "gateway/trace_context.h"

/* The span of a request, named "{method} {route name}" (the route, never the path: paths carry
 * patient ids, and neither url.path nor url.query is recorded). A 5xx is an error; 4xx are the
 * client's and stay unset, as the conventions say for servers. */
static void span_on_done(struct tg_req *req)
{
    struct tg_span_ring *ring = req->stats != NULL ? req->stats->spans : NULL;
    const struct tg_req_end *e = &req->end;
    const char *ua;
    size_t ua_len = 0;
    struct tg_span *s;

    if (ring == NULL || !(req->trace.flags & TG_TRACE_FLAG_SAMPLED) || req->trace.w3c[0] == '\0') {
        return;
    }
    s = tg_span_ring_reserve(ring);
    if (s == NULL) {
        return; /* the queue is full: dropped and counted, never waited for */
    }
    tg_span_copy(s->trace_id, sizeof(s->trace_id), req->trace.w3c);
    tg_span_copy(s->span_id, sizeof(s->span_id), req->trace.span);
    tg_span_copy(s->parent_id, sizeof(s->parent_id), req->trace.parent);
    s->kind = TG_SPAN_SERVER;
    s->end_ns = tg_span_unix_ns(req->start_us + e->duration_us);
    s->start_ns = s->end_ns - e->duration_us * 1000u;
    s->status = e->status;
    s->error = e->status >= 500;
    tg_span_copy(s->method, sizeof(s->method), req->method);
    if (req->policy != NULL) {
        snprintf(s->name, sizeof(s->name), "%s %s", req->method, req->policy->name);
        tg_span_copy(s->route, sizeof(s->route), req->policy->path);
        tg_span_copy(s->route_name, sizeof(s->route_name), req->policy->name);
    } else {
        tg_span_copy(s->name, sizeof(s->name), req->method);
    }
    tg_span_copy(s->scheme, sizeof(s->scheme), req->tls ? "https" : "http");
    tg_span_copy(s->protocol, sizeof(s->protocol),
                 req->version != NULL && strncmp(req->version, "HTTP/", 5) == 0 ? req->version + 5
                                                                                : req->version);
    tg_span_copy(s->peer, sizeof(s->peer), req->client_ip);
    ua = tg_req_header(req, "User-Agent", &ua_len);
    if (ua != NULL) {
        snprintf(s->user_agent, sizeof(s->user_agent), "%.*s", (int)ua_len, ua);
    }
    if (s->error || e->status == 499) {
        snprintf(s->error_type, sizeof(s->error_type), "%d", e->status);
    }
    tg_span_ring_commit(ring);
}

const struct tg_mw_ops tg_mw_span = {
    .name = "span",
    .on_done = span_on_done,
};
