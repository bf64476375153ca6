/* The fan-out handler: calls every backend of the route at once on the worker's curl multi
 * handle and answers one JSON object keyed by backend name (routes/merge.c builds it). The
 * first failure of a required backend decides the answer (502, or 504 for a timeout) and
 * cancels the calls still running, like errgroup; an optional backend's failure leaves null
 * and an "_errors" entry, and X-Tracegate-Completed: false says the answer is partial. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/upstream.h"
#include "routes/handler.h"
#include "routes/merge.h"
#include "routes/table.h"

#define URL_MAX          16384
#define COMPLETED_HEADER "X-Tracegate-Completed"

struct fanout;

/* One backend call; its address is the done callback's argument. */
struct branch {
    struct fanout *fo;          /* borrowed: the fan-out it belongs to */
    const struct tg_backend *b; /* borrowed from the route */
    struct tg_up_call *call;    /* borrowed from the upstream client while in flight, else NULL */
    bool budget_bound;          /* the request's budget, not the backend's timeout, caps the call */
};

/* A request's fan-out: req->handler_state, freed with the request (fanout_free). */
struct fanout {
    struct tg_req *req; /* borrowed: it owns us */
    size_t n;
    unsigned pending; /* calls in flight */
    bool starting;    /* serve is still starting calls: it answers itself if all end early */
    bool failed;      /* a required backend failed: the answer is decided, news is ignored */
    bool finished;    /* the answer is final */
    struct branch br[TG_FANOUT_MAX];
    struct tg_merge_part parts[TG_FANOUT_MAX];
};

/* Client headers as a backend receives them: what tg_header_forward passes, minus what would
 * change the answer's form, plus Accept: application/json. Body-describing headers (Content-*)
 * come last, so calls without a body pass only the first n_nobody. */
struct fwd {
    struct tg_kv kv[TG_HEADER_FORWARD_MAX + 1];
    size_t n_nobody;
    size_t n;
    char xff[TG_XFF_MAX];
};

static bool name_is(const struct tg_kv *kv, const char *lit)
{
    return tg_header_name_is(kv->name, kv->name_len, lit);
}

static bool name_starts(const struct tg_kv *kv, const char *prefix)
{
    size_t n = strlen(prefix);

    return kv->name_len >= n && strncasecmp(kv->name, prefix, n) == 0;
}

/* The merge needs identity-coded, complete, JSON answers with a 2xx status: a compressed,
 * ranged or conditional (304) answer, or one in the client's preferred media type, would
 * fail the backend for nothing. */
static bool shapes_answer(const struct tg_kv *kv)
{
    return name_is(kv, "Accept") || name_is(kv, "Accept-Encoding") || name_is(kv, "Range") ||
           name_starts(kv, "If-");
}

static void fwd_build(const struct tg_req *req, struct fwd *f)
{
    struct tg_kv all[TG_HEADER_FORWARD_MAX];
    size_t n = tg_header_forward(req, all, f->xff);

    f->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!shapes_answer(&all[i]) && !name_starts(&all[i], "Content-")) {
            f->kv[f->n++] = all[i];
        }
    }
    f->kv[f->n++] = (struct tg_kv){"Accept", "application/json", 6, 16};
    f->n_nobody = f->n;
    for (size_t i = 0; i < n; i++) {
        if (name_starts(&all[i], "Content-")) {
            f->kv[f->n++] = all[i];
        }
    }
}

/* Methods whose request carries the client's body; the others get none. */
static bool method_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static void fanout_free(struct tg_req *req)
{
    struct fanout *fo = req->handler_state;

    if (fo == NULL) {
        return;
    }
    for (size_t i = 0; i < fo->n; i++) {
        tg_merge_part_cleanup(&fo->parts[i]);
    }
    free(fo);
    req->handler_state = NULL;
}

static void log_failure(const struct tg_req *req, const struct tg_merge_part *p)
{
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_WARN, req, "fanout.backend_failed");
    tg_logline_str(&l, "route", req->route_name);
    tg_logline_str(&l, "backend", p->name);
    tg_logline_bool(&l, "required", p->required);
    tg_logline_str(&l, "cause", p->cause);
    if (p->status > 0) {
        tg_logline_int(&l, "status", p->status);
    }
    tg_logline_end(&l);
}

/* The answer for a request failed by the required part p: 504 for a timeout, else 502 (the
 * status table in gateway/err.c), with a body naming the backend and the cause. */
static void answer_error(struct tg_req *req, const struct tg_merge_part *p)
{
    int status = tg_err_http_status(p->err);
    size_t len = 0;
    char *body = tg_merge_error_body(p, req->trace_id, &len);

    if (body == NULL) {
        tg_req_fail_status(req, status, p->err, "backend failed");
    } else {
        tg_resp_cleanup(&req->resp);
        req->resp.status = status;
        tg_resp_set_body(&req->resp, body, len);
        tg_resp_add_header(&req->resp, "Content-Type", "application/json");
        req->err = p->err;
    }
    req->err_detail = p->cause; /* lives in handler_state, freed after the access log */
}

static void answer_merged(struct fanout *fo)
{
    struct tg_req *req = fo->req;
    char *body = NULL;
    size_t len = 0;
    bool complete = false;
    int rc = tg_merge_build(fo->parts, fo->n, req->route->max_merged_bytes, &body, &len, &complete);

    if (rc == TG_ETOOBIG) {
        req->err_detail = "merged response too large";
        tg_req_fail_status(req, 502, TG_EUPSTREAM, req->err_detail);
        return;
    }
    if (rc != TG_OK) {
        tg_req_fail(req, rc, NULL);
        return;
    }
    tg_resp_cleanup(&req->resp);
    req->resp.status = 200;
    tg_resp_set_body(&req->resp, body, len);
    tg_resp_add_header(&req->resp, "Content-Type", "application/json");
    tg_resp_add_header(&req->resp, COMPLETED_HEADER, complete ? "true" : "false");
}

/* A required backend failed: answer at once and cancel every call still running (each one's
 * connection closes now, its done runs nested here and finds fo->failed). */
static void fail_request(struct fanout *fo, const struct tg_merge_part *p)
{
    fo->failed = true;
    answer_error(fo->req, p);
    for (size_t i = 0; i < fo->n; i++) {
        if (fo->br[i].call != NULL) {
            tg_up_cancel(fo->br[i].call, TG_ECANCELED);
        }
    }
}

/* The last call ended: settle the answer once and resume the request. */
static void finish(struct fanout *fo)
{
    struct tg_req *req = fo->req;

    if (fo->finished) {
        return;
    }
    fo->finished = true;
    /* A cancelled request (client gone, shutdown) gets its status from the server. */
    if (!fo->failed && !req->cancelled) {
        answer_merged(fo);
    }
    tg_req_complete(req);
}

/* Records part p's outcome; a required failure decides the request. */
static void settle(struct fanout *fo, struct tg_merge_part *p, int err, int status, char *body,
                   size_t len, const char *detail, bool deadline)
{
    if (tg_merge_part_set(p, err, status, body, len, detail, deadline) == TG_OK) {
        return;
    }
    log_failure(fo->req, p);
    if (p->required) {
        fail_request(fo, p);
    }
}

/* Done callback of every call. Runs once per call: from the loop, or nested in tg_up_cancel
 * (our own cancellation of siblings, or the server's when the client left or at shutdown). */
static void branch_done(void *arg, struct tg_up_call *call, int err)
{
    struct branch *br = arg;
    struct fanout *fo = br->fo;
    struct tg_merge_part *p = &fo->parts[br - fo->br];
    char *body = NULL;
    size_t len = 0;

    br->call = NULL;
    fo->pending--;
    /* After a required failure or a cancellation of the request, a call's end is no news. */
    if (!fo->failed && !fo->req->cancelled) {
        if (err == TG_OK) {
            body = tg_up_call_take_body(call, &len);
        }
        settle(fo, p, err, tg_up_call_status(call), body, len, tg_up_call_detail(call),
               br->budget_bound);
    }
    if (fo->pending == 0 && !fo->starting) {
        finish(fo);
    }
}

/* The backend's absolute URL: origin, base path, then its path with {params} expanded. The
 * client's query string is not passed on: a backend path is a fixed API call of its own (its
 * conf path may carry a fixed query), and the client's parameters were meant for the route. */
static long backend_url(const struct tg_req *req, const struct tg_backend *b, char *out, size_t cap)
{
    const struct tg_upstream *u = b->upstream;
    size_t ulen = strlen(u->url);
    size_t blen = strlen(u->base_path);
    long n;

    if (ulen + blen >= cap) {
        return -1;
    }
    memcpy(out, u->url, ulen);
    memcpy(out + ulen, u->base_path, blen);
    n = tg_route_expand(b->path, req->match, out + ulen + blen, cap - ulen - blen);
    return n < 0 ? -1 : n + (long)(ulen + blen);
}

static void start_branch(struct fanout *fo, size_t i, const struct fwd *f, char *url)
{
    struct tg_req *req = fo->req;
    struct branch *br = &fo->br[i];
    const struct tg_backend *b = br->b;
    const struct tg_upstream *u = b->upstream;
    bool body = method_has_body(b->method);
    struct tg_up_request up = {
        .label = b->name,
        .method = b->method,
        .url = url,
        .hdrs = f->kv,
        .n_hdrs = body ? f->n : f->n_nobody,
        .body = body ? req->body : NULL,
        .body_len = body ? req->body_len : 0,
        .timeout_ms = b->timeout_ms > 0 ? b->timeout_ms : u->timeout_ms,
        .connect_timeout_ms = u->connect_timeout_ms,
        .max_body = b->max_body_bytes,
        .limit_key = u->name,
        .max_in_flight = u->max_in_flight,
    };
    uint64_t left = tg_req_remaining_ms(req);
    int rc;

    if (backend_url(req, b, url, URL_MAX) < 0) {
        settle(fo, &fo->parts[i], TG_EINVAL, 0, NULL, 0, "backend url too long", false);
        return;
    }
    /* tg_up_start gives the call min(timeout, budget left): a timeout then blames one or the
     * other. */
    br->budget_bound = up.timeout_ms == 0 || left <= up.timeout_ms;
    rc = tg_up_start(req->up, req, &up, branch_done, br, &br->call);
    if (rc == TG_OK) {
        fo->pending++;
        return;
    }
    br->call = NULL;
    settle(fo, &fo->parts[i], rc, 0, NULL, 0, NULL, true);
}

static int fanout_serve(struct tg_req *req)
{
    const struct tg_route *r = req->route;
    struct fanout *fo = calloc(1, sizeof(*fo));
    struct fwd *f = malloc(sizeof(*f));
    char *url = malloc(URL_MAX);
    int rc = TG_ENOMEM;

    if (fo == NULL || f == NULL || url == NULL || r->n_backends > TG_FANOUT_MAX) {
        free(fo);
        goto out;
    }
    req->handler_state = fo;
    req->handler_free = fanout_free;
    fo->req = req;
    fo->n = r->n_backends;
    fo->starting = true;
    fwd_build(req, f);
    for (size_t i = 0; i < fo->n; i++) {
        fo->br[i] = (struct branch){.fo = fo, .b = &r->backends[i]};
        fo->parts[i].name = r->backends[i].name;
        fo->parts[i].required = r->backends[i].required;
    }
    /* All calls start now and run at once on the loop; none can end before the loop runs,
     * except those a required failure to start cancels right here. */
    for (size_t i = 0; i < fo->n && !fo->failed; i++) {
        start_branch(fo, i, f, url);
    }
    fo->starting = false;
    if (fo->pending > 0) {
        rc = TG_MW_ASYNC;
        goto out;
    }
    if (!fo->failed) {
        answer_merged(fo);
    }
    fo->finished = true;
    rc = TG_MW_DONE;
out:
    free(f);
    free(url);
    return rc;
}

const struct tg_handler_ops tg_handler_fanout = {
    .kind = "fanout",
    .serve = fanout_serve,
};
