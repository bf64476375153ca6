/* A call's life, around its attempts: the pool admits it (bulkhead, breaker) and picks each
 * attempt's target, a failed attempt goes again under the retry rules after its backoff, and
 * the call ends once, through done. Each attempt is one transfer (upstream.c), its own span
 * and its own upstream.done line. The contracts are in gateway/upstream.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/pool.h"
#include "gateway/random.h"
#include "gateway/req.h"
#include "gateway/retry.h"
#include "gateway/span.h"
#include "gateway/stats.h"
#include "gateway/trace_context.h"
#include "gateway/upstream.h"
#include "gateway/upstream_internal.h"

#define ATTEMPT_MAX_MS    86400000u /* what an attempt gets on a request without a deadline */
#define RETRY_MIN_LEFT_MS 2u        /* a retry needs this much budget left after its backoff */

static void log_done(const struct tg_up_call *call, int err)
{
    struct tg_logline l;
    const struct tg_req *req = call->req;

    tg_logline_begin(&l, err == TG_OK ? TG_LOG_INFO : TG_LOG_WARN, NULL, "upstream.done");
    tg_logline_str(&l, "trace_id", req->trace.id);
    tg_logline_str(&l, "span_id", call->span);
    tg_logline_str(&l, "parent_span_id", req->trace.span);
    tg_logline_str(&l, "upstream", call->label);
    if (call->u != NULL) {
        tg_logline_str(&l, "target", call->u->targets[call->target].url);
        tg_logline_int(&l, "attempt", call->attempt);
    }
    tg_logline_int(&l, "status", call->status);
    tg_logline_ms(&l, "duration_ms", (double)(call->end_us - call->start_us) / 1000.0);
    tg_logline_int(&l, "timeout_ms", call->timeout_ms);
    if (err != TG_OK) {
        tg_logline_str(&l, "err", tg_strerror(err));
        tg_logline_str(&l, "reason", call->detail);
    }
    tg_logline_end(&l);
}

/* The outcome label of a finished call: its status class, or why it has none. */
static const char *outcome_of(const struct tg_up_call *call, int err)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

    switch (err) {
    case TG_OK:
        return call->status >= 100 && call->status <= 599 ? classes[call->status / 100 - 1]
                                                          : "error";
    case TG_ETIMEDOUT:
        return "timeout";
    case TG_ERESPTOOBIG:
        return "too_large";
    case TG_EUPSTREAM:
        return "error";
    default:
        return "cancelled"; /* the client left, a sibling failed, the gateway drains */
    }
}

/* The upstream's name for metrics and spans (the backend's name is only for logs). */
static const char *metrics_label(const struct tg_up_call *call)
{
    return call->u != NULL ? call->u->name : call->label;
}

/* The host and port of an absolute URL ("http://[::1]:9102/x" gives "::1" and 9102). */
static void url_host(const char *url, char *host, size_t cap, unsigned *port)
{
    const char *a = strstr(url, "://");
    const char *end, *colon;
    size_t n;

    host[0] = '\0';
    *port = strncmp(url, "https", 5) == 0 ? 443 : 80;
    if (a == NULL) {
        return;
    }
    a += 3;
    end = a + strcspn(a, "/?#");
    if (*a == '[') {
        const char *close = memchr(a, ']', (size_t)(end - a));
        colon = close != NULL && close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        a++;
        n = close != NULL ? (size_t)(close - a) : 0;
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
        n = (size_t)((colon != NULL ? colon : end) - a);
    }
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(host, a, n);
    host[n] = '\0';
    if (colon != NULL) {
        *port = (unsigned)strtoul(colon + 1, NULL, 10);
    }
}

/* One CLIENT span per attempt, when the request is sampled and export is on. 4xx,
 * 5xx and no answer are errors, as the conventions say for clients. The URL is not recorded:
 * its path and query may name a patient. */
static void record_span(const struct tg_up_call *call, int err)
{
    const struct tg_req *req = call->req;
    struct tg_span_ring *ring = req->stats != NULL ? req->stats->spans : NULL;
    struct tg_span *s;

    if (ring == NULL || !(req->trace.flags & TG_TRACE_FLAG_SAMPLED)) {
        return;
    }
    s = tg_span_ring_reserve(ring);
    if (s == NULL) {
        return;
    }
    tg_span_copy(s->trace_id, sizeof(s->trace_id), req->trace.w3c);
    tg_span_copy(s->span_id, sizeof(s->span_id), call->span);
    tg_span_copy(s->parent_id, sizeof(s->parent_id), req->trace.span);
    s->kind = TG_SPAN_CLIENT;
    s->start_ns = tg_span_unix_ns(call->start_us);
    s->end_ns = s->start_ns + (call->end_us - call->start_us) * 1000u;
    s->status = call->status;
    s->resend_count = call->attempt > 0 ? call->attempt - 1 : 0; /* this attempt's retries before */
    s->error = err != TG_OK || call->status >= 400;
    tg_span_copy(s->name, sizeof(s->name), call->method);
    tg_span_copy(s->method, sizeof(s->method), call->method);
    url_host(call->x.url, s->peer, sizeof(s->peer), &s->port);
    tg_span_copy(s->peer_ip, sizeof(s->peer_ip), call->peer);
    if (strrchr(s->peer_ip, ':') != NULL && call->peer[0] != '[') {
        *strrchr(s->peer_ip, ':') = '\0'; /* the address alone */
    }
    tg_span_copy(s->upstream, sizeof(s->upstream), metrics_label(call));
    if (err != TG_OK) {
        tg_span_copy(s->error_type, sizeof(s->error_type), outcome_of(call, err));
    } else if (call->status >= 400) {
        snprintf(s->error_type, sizeof(s->error_type), "%d", call->status);
    }
    tg_span_ring_commit(ring);
}

static void count_attempt(const struct tg_up_call *call, int err)
{
    const char *labels[2] = {metrics_label(call), outcome_of(call, err)};

    tg_metric_observe(call->req->stats, TG_M_UPSTREAM_DURATION, labels,
                      call->end_us - call->start_us);
    tg_metric_add(call->req->stats, TG_M_UPSTREAM_IN_FLIGHT, labels, -1);
}

/* ---- waiting ---------------------------------------------------------------------------- */

static void wait_remove(struct tg_up_call *call)
{
    if (call->waiting) {
        tg_list_remove(&call->wait_link);
        call->waiting = false;
    }
}

/* Parks call until due_us (0: the next loop pass), then err decides: TG_OK starts the next
 * attempt, anything else ends the call with it. The list is kept in due order, searched from
 * its end, where a later time usually goes. */
static void wait_until(struct tg_up_call *call, uint64_t due_us, int err)
{
    struct tg_list *head = &call->up->waiting;
    struct tg_list *pos = head->prev;

    wait_remove(call);
    call->due_us = due_us;
    call->wait_err = err;
    while (pos != head && TG_LIST_ENTRY(pos, struct tg_up_call, wait_link)->due_us > due_us) {
        pos = pos->prev;
    }
    /* after pos */
    call->wait_link.prev = pos;
    call->wait_link.next = pos->next;
    pos->next->prev = &call->wait_link;
    pos->next = &call->wait_link;
    call->waiting = true;
}

/* Ends the call on the next loop pass with err (why: the detail; NULL keeps the last one). */
static void finish_soon(struct tg_up_call *call, int err, const char *why)
{
    if (why != NULL) {
        call->detail = why;
    }
    wait_until(call, 0, err);
}

/* ---- the end ------------------------------------------------------------------------------ */

static void call_release(struct tg_up_call *call)
{
    if (call == NULL) {
        return;
    }
    tg_up_xfer_cleanup(call);
    free(call->method);
    free(call->path);
    tg_buf_cleanup(&call->body);
    tg_resp_cleanup(&call->rh);
    free(call);
}

/* Unlinks call from everything, runs done, frees the call. */
static void call_finish(struct tg_up_call *call, int err)
{
    struct tg_req *req = call->req;

    wait_remove(call);
    if (req != NULL) {
        tg_list_remove(&call->link);
        req->pending--;
    }
    if (call->slot_held) {
        tg_pool_leave(call->u);
        call->slot_held = false;
    }
    if (call->budget_held) {
        tg_retry_budget_give(call->u);
        call->budget_held = false;
    }
    tg_up_stream_finish(call, err);
    call->done(call->arg, call, err);
    call_release(call);
}

/* The running transfer stops (over, or cancelled): the target, the request and the log hear
 * how it went. */
static void attempt_stop(struct tg_up_call *call, int err, enum tg_outcome o)
{
    struct tg_req *req = call->req;

    call->end_us = tg_now_us();
    if (req != NULL) {
        tg_up_xfer_peer(call, call->peer, sizeof(call->peer));
    }
    tg_up_xfer_stop(call);
    call->running = false;
    if (call->u != NULL && !call->probe) {
        tg_pool_end(call->u, call->target, o, call->end_us);
    }
    if (call->budget_held) {
        tg_retry_budget_give(call->u); /* the retry has run */
        call->budget_held = false;
    }
    if (req != NULL) {
        req->end.upstream_us += call->end_us - call->start_us;
        if (call->status > 0) {
            req->end.upstream_status = call->status;
        }
        req->end.attempts++;
        if (call->peer[0] != '\0') {
            _Static_assert(sizeof(req->end.upstream_addr) == sizeof(call->peer), "one size");
            memcpy(req->end.upstream_addr, call->peer, sizeof(call->peer));
        }
        memcpy(req->end.upstream_span, call->span, sizeof(call->span));
        if (!(call->quiet_success && err == TG_OK && call->attempt == 1 && call->status < 500)) {
            log_done(call, err);
        }
        count_attempt(call, err);
        record_span(call, err);
    }
}

/* ---- attempts ----------------------------------------------------------------------------- */

/* Starts the transfer of the next attempt with the budget left (left_ms): min(the budget, the
 * call's cap, the route's per-try timeout). */
static int attempt_start(struct tg_up_call *call, uint64_t left_ms)
{
    unsigned t = left_ms > ATTEMPT_MAX_MS ? ATTEMPT_MAX_MS : (unsigned)left_ms;
    unsigned per_try = call->retry != NULL ? call->retry->per_try_timeout_ms : 0;
    int rc;

    t = call->cap_ms > 0 && call->cap_ms < t ? call->cap_ms : t;
    call->timeout_ms = per_try > 0 && per_try < t ? per_try : t;
    /* the answer is the last attempt's: what an earlier one got goes */
    tg_buf_cleanup(&call->body);
    tg_resp_cleanup(&call->rh);
    call->status = 0;
    call->detail = NULL;
    call->too_big = false;
    call->start_us = tg_now_us();
    rc = tg_up_xfer_start(call);
    if (rc != TG_OK) {
        return rc;
    }
    tg_up_stream_started(call);
    call->running = true;
    call->attempt++;
    call->tried |= (uint64_t)1 << call->target;
    if (call->u != NULL && !call->probe) {
        tg_pool_begin(call->u, call->target);
        if (call->attempt > 1) {
            TG_SHARED_ADD(&call->u->pool->stats, retries, 1);
        }
    }
    if (call->req != NULL && call->req->stats != NULL) {
        const char *label = metrics_label(call);
        TG_STAT_ADD(call->req->stats, upstream_calls, 1);
        tg_metric_add(call->req->stats, TG_M_UPSTREAM_IN_FLIGHT, &label, 1);
    }
    return TG_OK;
}

/* The next attempt: the pool admits it and picks its target, then its transfer starts. What
 * cannot start ends the call on the next pass (never inside tg_up_start): a first attempt a
 * pool refused with the refusal, a retry with what the attempt before it got. */
static void attempt_launch(struct tg_up_call *call)
{
    uint64_t now = tg_now_us();
    uint64_t left = call->req != NULL ? tg_req_remaining_ms(call->req) : UINT64_MAX;
    const char *why = NULL;
    int rc;

    if (left == 0) {
        finish_soon(call, call->attempt > 0 ? call->last_err : TG_ETIMEDOUT,
                    call->attempt > 0 ? NULL : "deadline exceeded");
        return;
    }
    if (call->u != NULL && !call->probe) {
        rc = tg_pool_admit(call->u, call->tried, now, tg_random_u64(), tg_random_unit(),
                           &call->target, &why);
        if (rc != TG_OK && call->attempt == 0) {
            call->retry_after_s = tg_pool_retry_after_s(call->u, now);
            finish_soon(call, rc, why);
            return;
        }
        if (rc != TG_OK) {
            finish_soon(call, call->last_err, NULL);
            return;
        }
    }
    rc = attempt_start(call, left);
    if (rc != TG_OK) {
        finish_soon(call, rc, "cannot start the transfer");
    }
}

/* Whether the attempt that just ended (r) goes again: the retry rules, then a backoff that
 * ends inside the deadline, then a place in the upstream's retry budget. Parks the call for
 * its backoff when it does. */
static bool retry_later(struct tg_up_call *call, const struct tg_attempt_result *r, int err)
{
    unsigned wait_ms;
    uint64_t left;

    /* A streamed body went (or came) as it was: there is no copy to send again. */
    if (call->retry == NULL || call->req == NULL || call->req->cancelled ||
        tg_up_stream_active(call) ||
        !tg_retry_allowed(call->retry, call->method, call->attempt, r)) {
        return false;
    }
    wait_ms = tg_retry_backoff_ms(call->attempt, tg_random_u64());
    left = tg_req_remaining_ms(call->req);
    if (left <= (uint64_t)wait_ms + RETRY_MIN_LEFT_MS || tg_retry_budget_take(call->u) != TG_OK) {
        return false;
    }
    call->budget_held = true;
    call->last_err = err;
    wait_until(call, tg_now_us() + (uint64_t)wait_ms * 1000u, TG_OK);
    return true;
}

void tg_up_call_ended(struct tg_up_call *call, int err, enum tg_outcome o, bool answered)
{
    struct tg_attempt_result r = {o, call->status, answered};

    attempt_stop(call, err, o);
    if (!retry_later(call, &r, err)) {
        call_finish(call, err);
    }
}

void tg_up_call_expire(struct tg_up_call *call, const char *why)
{
    call->detail = why;
    attempt_stop(call, TG_ETIMEDOUT, TG_OUT_TIMEOUT);
    call_finish(call, TG_ETIMEDOUT);
}

void tg_up_run_waiting(struct tg_up *up)
{
    uint64_t now = tg_now_us();

    /* The head is read again each turn: a done callback may cancel other waiting calls. */
    while (!tg_list_is_empty(&up->waiting)) {
        struct tg_up_call *call = TG_LIST_ENTRY(up->waiting.next, struct tg_up_call, wait_link);
        /* The analyzer loses track of wait_remove unlinking each call before it is freed (a
         * fresh head every turn). NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
        if (call->due_us > now) {
            return;
        }
        wait_remove(call);
        if (call->wait_err != TG_OK) {
            call_finish(call, call->wait_err);
        } else {
            attempt_launch(call);
        }
    }
}

/* ---- starting ---------------------------------------------------------------------------- */

/* A new call, not yet linked anywhere; NULL when out of memory. */
static struct tg_up_call *call_new(struct tg_up *up, struct tg_req *req, const char *method,
                                   const char *path, tg_up_done_fn *done, void *arg)
{
    struct tg_up_call *call = calloc(1, sizeof(*call));

    if (call == NULL) {
        return NULL;
    }
    call->up = up;
    call->req = req;
    call->done = done;
    call->arg = arg;
    tg_list_init(&call->link);
    tg_list_init(&call->wait_link);
    call->method = strdup(method);
    call->path = strdup(path);
    if (call->method == NULL || call->path == NULL) {
        call_release(call);
        return NULL;
    }
    return call;
}

/* Links a new call to req. */
static void call_link(struct tg_up_call *call)
{
    tg_list_push(&call->req->calls, &call->link);
    call->req->pending++;
}

int tg_up_start(struct tg_up *up, struct tg_req *req, const struct tg_up_request *r,
                tg_up_done_fn *done, void *arg, struct tg_up_call **out)
{
    struct tg_up_call *call;

    if (req->cancelled) {
        return TG_ECANCELED;
    }
    if (tg_req_remaining_ms(req) == 0) {
        return TG_ETIMEDOUT;
    }
    call = call_new(up, req, r->method, r->upstream != NULL ? r->path : r->url, done, arg);
    if (call == NULL) {
        return TG_ENOMEM;
    }
    call->label = r->label;
    call->quiet_success = r->quiet_success;
    call->u = r->upstream;
    /* A streamed request body is sent once: nothing of it is kept to send again. */
    call->retry = r->upstream != NULL && r->body_stream == NULL ? r->retry : NULL;
    call->send = r->body;
    call->send_len = r->body_len;
    call->cap_ms = r->timeout_ms;
    call->connect_ms = r->connect_timeout_ms;
    call->body.limit = r->max_body;
    tg_up_stream_prepare(call, r);
    if (tg_up_xfer_prepare(call, r) != TG_OK) {
        call_release(call);
        return TG_ENOMEM;
    }
    call_link(call);
    if (out != NULL) {
        *out = call; /* owned by up until done() has run */
    }
    if (call->u != NULL) {
        TG_SHARED_ADD(&call->u->pool->stats, calls, 1);
        if (tg_pool_enter(call->u) != TG_OK) {
            call->retry_after_s = 1;
            finish_soon(call, TG_EOVERLOAD, "upstream at max_in_flight");
            return TG_OK;
        }
        call->slot_held = true;
    }
    attempt_launch(call);
    return TG_OK;
}

int tg_up_probe(struct tg_up *up, const struct tg_upstream *u, size_t i, tg_up_done_fn *done,
                void *arg, struct tg_up_call **out)
{
    size_t blen = strlen(u->base_path), plen = strlen(u->hc.path);
    char *path = malloc(blen + plen + 1);
    struct tg_up_call *call;

    if (path == NULL) {
        return TG_ENOMEM;
    }
    memcpy(path, u->base_path, blen);
    memcpy(path + blen, u->hc.path, plen + 1);
    call = call_new(up, NULL, u->hc.method, path, done, arg);
    free(path);
    if (call == NULL) {
        return TG_ENOMEM;
    }
    call->label = u->name;
    call->u = u;
    call->probe = true;
    call->target = i;
    call->cap_ms = u->hc.timeout_ms;
    call->connect_ms = u->connect_timeout_ms;
    if (tg_up_xfer_prepare(call, NULL) != TG_OK) {
        call_release(call);
        return TG_ENOMEM;
    }
    if (out != NULL) {
        *out = call;
    }
    attempt_launch(call);
    return TG_OK;
}

void tg_up_cancel(struct tg_up_call *call, int err, const char *why)
{
    /* The analyzer loses track of tg_up_cancel_req unlinking each call it frees (a fresh head
     * every turn). NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
    call->detail = why != NULL ? why : tg_err_cancel_reason(err);
    if (call->running) {
        /* Removing an unfinished transfer makes curl close its connection: the upstream sees
         * it. A cancel says nothing about the target. */
        attempt_stop(call, err, TG_OUT_NONE);
    }
    call_finish(call, err);
}

void tg_up_cancel_req(struct tg_req *req, int err)
{
    /* Re-read the head each time: a done callback may cancel other calls of req. Each
     * tg_up_cancel unlinks the call it frees from req->calls. */
    while (!tg_list_is_empty(&req->calls)) {
        struct tg_up_call *call = TG_LIST_ENTRY(req->calls.next, struct tg_up_call, link);
        tg_up_cancel(call, err, NULL);
    }
}

int tg_up_call_status(const struct tg_up_call *call)
{
    return call->status;
}

bool tg_up_call_may_retry(const struct tg_up_call *call, int status)
{
    struct tg_attempt_result r = {
        status >= 500   ? TG_OUT_STATUS
        : status == 429 ? TG_OUT_BACKPRESSURE
                        : TG_OUT_OK,
        status,
        true,
    };

    return call->retry != NULL && tg_retry_allowed(call->retry, call->method, call->attempt, &r);
}

char *tg_up_call_take_body(struct tg_up_call *call, size_t *len)
{
    return tg_buf_steal(&call->body, len);
}

bool tg_up_call_header_next(const struct tg_up_call *call, size_t *pos, const char **name,
                            const char **value)
{
    return tg_resp_header_next(&call->rh, pos, name, value);
}

bool tg_up_call_sent(const struct tg_up_call *call)
{
    return call->sent;
}

const char *tg_up_call_detail(const struct tg_up_call *call)
{
    return call->detail;
}

unsigned tg_up_call_retry_after_s(const struct tg_up_call *call)
{
    return call->retry_after_s;
}
