/* The fan-out handler: calls every backend of the route at once on the worker's curl multi
 * handle and answers one JSON object keyed by backend name (routes/merge.c builds it). The
 * first failure of a required backend decides the answer (502, or 504 for a timeout) and
 * cancels the calls still running, like errgroup; an optional backend's failure leaves null
 * and an "_errors" entry, and X-Tracegate-Completed: false says the answer is partial. */
#include "routes/fanout.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/log.h"
#include "gateway/upstream.h"
#include "routes/handler.h"
#include "routes/merge.h"
#include "routes/table.h"

#define COMPLETED_HEADER "X-Tracegate-Completed"

static const char *const fanout_keys[] = {"max_merged_bytes", "retry", NULL};
static const char *const backend_keys[] = {
    "name", "upstream", "path", "method", "required", "timeout_ms", "max_body_bytes", NULL,
};

struct fanout;

/* One backend call; its address is the done callback's argument. */
struct branch {
    struct fanout *fo;          /* borrowed: the fan-out it belongs to */
    const struct tg_backend *b; /* borrowed from the route */
    struct tg_up_call *call;    /* borrowed from the upstream client while in flight, else NULL */
    bool budget_bound;          /* the request's budget, not the backend's timeout, caps the call */
};

/* A request's fan-out, in request memory (tagged &tg_handler_fanout). */
struct fanout {
    struct tg_req *req; /* borrowed: it owns us */
    const struct tg_fanout_conf *fc;
    size_t n;
    unsigned pending; /* calls in flight */
    bool starting;    /* serve is still starting calls: it answers itself if all end early */
    bool decided;     /* the answer is decided (a required failure, a cancel): news is ignored */
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

/* Request memory's dispose: the parts own the bodies they kept. */
static void fanout_dispose(void *p)
{
    struct fanout *fo = p;

    for (size_t i = 0; i < fo->n; i++) {
        tg_merge_part_cleanup(&fo->parts[i]);
    }
}

static void log_failure(const struct tg_req *req, const struct tg_merge_part *p)
{
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_WARN, req, "fanout.backend_failed");
    tg_logline_str(&l, "route", req->policy->name);
    tg_logline_str(&l, "backend", p->name);
    tg_logline_bool(&l, "required", p->required);
    tg_logline_str(&l, "cause", p->cause);
    if (p->status > 0) {
        tg_logline_int(&l, "status", p->status);
    }
    tg_logline_end(&l);
}

static void answer_merged(struct fanout *fo)
{
    struct tg_req *req = fo->req;
    char *body = NULL;
    size_t len = 0;
    bool complete = false;
    int rc = tg_merge_build(fo->parts, fo->n, fo->fc->max_merged_bytes, &body, &len, &complete);

    if (rc == TG_ETOOBIG) {
        tg_req_fail(req, TG_ERESPTOOBIG, "merged response too large");
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

/* Stops every call still running with err (each one's connection closes now; its done runs
 * nested here and finds fo->decided). */
static void cancel_calls(struct fanout *fo, int err, const char *why)
{
    fo->decided = true;
    for (size_t i = 0; i < fo->n; i++) {
        if (fo->br[i].call != NULL) {
            tg_up_cancel(fo->br[i].call, err, why);
        }
    }
}

/* A required backend failed: the answer is its error, the siblings stop. The backend and cause
 * reach the log always, the client only where the route exposes errors. */
static void fail_request(struct fanout *fo, const struct tg_merge_part *p)
{
    fo->req->end.backend = p->name;
    tg_req_fail(fo->req, p->err, p->cause); /* cause lives in request memory */
    cancel_calls(fo, TG_ECANCELED, "a required sibling failed");
}

/* The last call ended: settle the answer once and complete the request. */
static void finish(struct fanout *fo)
{
    if (fo->finished) {
        return;
    }
    fo->finished = true;
    if (!fo->decided) {
        answer_merged(fo);
    }
    tg_req_complete(fo->req);
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
 * (our own cancellation of siblings, or fanout_cancel). */
static void branch_done(void *arg, struct tg_up_call *call, int err)
{
    struct branch *br = arg;
    struct fanout *fo = br->fo;
    struct tg_merge_part *p = &fo->parts[br - fo->br];
    char *body = NULL;
    size_t len = 0;

    br->call = NULL;
    fo->pending--;
    if (!fo->decided) {
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

/* The backend's request-target: the upstream's base path, then its path with {params}
 * expanded. The client's query string is not passed on: a backend path is a fixed API call of
 * its own (its conf path may carry a fixed query), and the client's parameters were meant for
 * the route. */
static long backend_path(const struct tg_req *req, const struct tg_backend *b, char *out,
                         size_t cap)
{
    size_t blen = strlen(b->upstream->base_path);
    long n;

    if (blen >= cap) {
        return -1;
    }
    memcpy(out, b->upstream->base_path, blen);
    n = tg_route_expand(b->path, req->match, out + blen, cap - blen);
    return n < 0 ? -1 : n + (long)blen;
}

static void start_branch(struct fanout *fo, size_t i, const struct fwd *f, char *path)
{
    struct tg_req *req = fo->req;
    struct branch *br = &fo->br[i];
    const struct tg_backend *b = br->b;
    const struct tg_upstream *u = b->upstream;
    bool body = method_has_body(b->method);
    struct tg_up_request up = {
        .label = b->name,
        .method = b->method,
        .upstream = u,
        .path = path,
        .retry = &fo->fc->retry,
        .hdrs = f->kv,
        .n_hdrs = body ? f->n : f->n_nobody,
        .body = body ? req->body.data : NULL,
        .body_len = body ? req->body.len : 0,
        .timeout_ms = b->timeout_ms > 0 ? b->timeout_ms : u->timeout_ms,
        .connect_timeout_ms = u->connect_timeout_ms,
        .max_body = b->max_body_bytes,
    };
    uint64_t left = tg_req_remaining_ms(req);
    int rc;

    if (backend_path(req, b, path, TG_URL_MAX) < 0) {
        settle(fo, &fo->parts[i], TG_EINVAL, 0, NULL, 0, "backend url too long", false);
        return;
    }
    /* tg_up_start gives each attempt min(timeout, budget left): a timeout then blames one or
     * the other. */
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
    const struct tg_fanout_conf *fc = req->policy->handler_conf;
    struct fanout *fo = tg_req_alloc(req, &tg_handler_fanout, sizeof(*fo), fanout_dispose);
    struct fwd *f = malloc(sizeof(*f));
    char *path = malloc(TG_URL_MAX);
    int rc = TG_ENOMEM;

    if (fo == NULL || f == NULL || path == NULL) {
        goto out;
    }
    fo->req = req;
    fo->fc = fc;
    fo->n = fc->n_backends;
    fo->starting = true;
    fwd_build(req, f);
    for (size_t i = 0; i < fo->n; i++) {
        fo->br[i] = (struct branch){.fo = fo, .b = &fc->backends[i]};
        fo->parts[i].name = fc->backends[i].name;
        fo->parts[i].required = fc->backends[i].required;
    }
    /* All calls start now and run at once on the loop; none can end before the loop runs,
     * except those a required failure to start cancels right here. */
    for (size_t i = 0; i < fo->n && !fo->decided; i++) {
        start_branch(fo, i, f, path);
    }
    fo->starting = false;
    if (fo->pending > 0) {
        rc = TG_MW_ASYNC;
        goto out;
    }
    if (!fo->decided) {
        answer_merged(fo);
    }
    fo->finished = true;
    rc = TG_MW_DONE;
out:
    free(f);
    free(path);
    return rc;
}

/* The client left, or the gateway drains: every call stops, the answer is the error for err. */
static void fanout_cancel(struct tg_req *req, int err)
{
    struct fanout *fo = tg_req_get(req, &tg_handler_fanout);

    if (fo == NULL) {
        return;
    }
    tg_req_fail(req, err, tg_err_cancel_reason(err));
    cancel_calls(fo, err, tg_err_cancel_reason(err));
    finish(fo);
}

/* ---- conf -------------------------------------------------------------------------------- */

static int load_backend(const struct tg_route_load *rl, const char *jpath, const json_t *v,
                        struct tg_backend *b)
{
    struct tg_conf_ctx *ctx = rl->ctx;
    char path[TG_JPATH_MAX], quoted[96];
    const char *name = NULL, *bpath = NULL, *method = "GET";
    int rc;

    b->required = true;
    b->max_body_bytes = TG_CONF_MIB;
    if (!json_is_object(v)) {
        return tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
    }
    rc = tg_conf_check_keys(ctx, v, jpath, backend_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "name", true, &name);
    if (rc == TG_OK && (!tg_conf_is_name(name) || name[0] == '_')) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "name"),
                             "bad backend name %s: expected 1..%d characters of [A-Za-z0-9_-], "
                             "not starting with '_' (reserved for \"_errors\")",
                             tg_jpos_quote(quoted, sizeof(quoted), name), TG_CONF_NAME_MAX);
    }
    rc = rc != TG_OK ? rc : tg_route_get_upstream(rl, v, jpath, &b->upstream);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "path", true, &bpath);
    if (rc == TG_OK) {
        rc = tg_route_check_template(rl, tg_jpos_path_key(path, sizeof(path), jpath, "path"),
                                     "path", bpath, true);
    }
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "method", false, &method);
    if (rc == TG_OK) {
        rc = tg_route_check_method(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "method"),
                                   method, false);
    }
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, v, jpath, "required", &b->required);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 0, TG_CONF_HOUR_MS,
                                            &b->timeout_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_size(ctx, v, jpath, "max_body_bytes", 1, TG_CONF_GIB,
                                        &b->max_body_bytes);
    if (rc != TG_OK) {
        return rc;
    }
    b->name = strdup(name);
    b->path = strdup(bpath);
    b->method = strdup(method);
    if (b->name == NULL || b->path == NULL || b->method == NULL) {
        return TG_ENOMEM;
    }
    return TG_OK;
}

static void fanout_cleanup(void *conf)
{
    struct tg_fanout_conf *fc = conf;

    if (fc == NULL) {
        return;
    }
    for (size_t i = 0; i < fc->n_backends; i++) {
        free(fc->backends[i].name);
        free(fc->backends[i].path);
        free(fc->backends[i].method);
    }
    free(fc->backends);
    free(fc);
}

static int fanout_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX], bpath[TG_JPATH_MAX], npath[TG_JPATH_MAX], quoted[96];
    struct tg_fanout_conf *fc = calloc(1, sizeof(*fc));
    json_t *arr = NULL;
    size_t n;
    int rc;

    if (fc == NULL) {
        return TG_ENOMEM;
    }
    *out = fc; /* freed with the route from here on */
    fc->max_merged_bytes = (size_t)4 * TG_CONF_MIB;
    rc = tg_conf_get_json(rl->ctx, rl->obj, rl->jpath, "backends", JSON_ARRAY, true, &arr);
    if (rc != TG_OK) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "backends");
    n = json_array_size(arr);
    if (n == 0 || n > TG_FANOUT_MAX) {
        return tg_conf_error(rl->ctx, path, "expected 1..%d backends, got %zu", TG_FANOUT_MAX, n);
    }
    fc->backends = calloc(n, sizeof(*fc->backends));
    if (fc->backends == NULL) {
        return TG_ENOMEM;
    }
    rc = TG_OK;
    for (size_t i = 0; i < n; i++) {
        struct tg_backend *b = &fc->backends[fc->n_backends++];
        int one;
        tg_jpos_path_index(bpath, sizeof(bpath), path, i);
        one = load_backend(rl, bpath, json_array_get(arr, i), b);
        for (size_t j = 0; one == TG_OK && j < i; j++) {
            if (fc->backends[j].name != NULL && strcmp(fc->backends[j].name, b->name) == 0) {
                one = tg_conf_error(rl->ctx, tg_jpos_path_key(npath, sizeof(npath), bpath, "name"),
                                    "duplicate backend name %s (also backends[%zu])",
                                    tg_jpos_quote(quoted, sizeof(quoted), b->name), j);
            }
        }
        /* The next backend is read after a bad one: --check reports them all. */
        rc = tg_conf_worst(rc, one);
        if (rc == TG_ENOMEM) {
            return rc;
        }
    }
    rc = tg_conf_worst(rc, tg_route_get_retry(rl, &fc->retry));
    return tg_conf_worst(rc, tg_conf_get_size(rl->ctx, rl->obj, rl->jpath, "max_merged_bytes", 1,
                                              TG_CONF_GIB, &fc->max_merged_bytes));
}

const struct tg_handler_ops tg_handler_fanout = {
    .key = "backends",
    .keys = fanout_keys,
    .load = fanout_load,
    .cleanup = fanout_cleanup,
    .serve = fanout_serve,
    .cancel = fanout_cancel,
};
