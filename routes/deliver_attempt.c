/* One delivery attempt (routes/deliver_internal.h): the request as the backend gets it, the
 * verdict on what came back, and the spool operations that record it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/buf.h"
#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/stats.h"
#include "gateway/testhook.h"
#include "gateway/trace_context.h"
#include "gateway/upstream.h"
#include "routes/deliver_internal.h"
#include "routes/durable.h"
#include "routes/handler.h"
#include "routes/proxy.h"
#include "routes/table.h"

#define EXTRA_HDRS        4 /* the key, the id, the time, the attempt */
#define NO_ROUTE_WAIT_MS  60000
#define RETRY_AFTER_MAX_S 86400

/* ---- bookkeeping ---------------------------------------------------------------------------- */

/* One of d's outstanding parts (the attempt, a spool operation) is done; the last one hands d
 * back to the delivery thread to be freed. Any thread. */
static void part_done(struct tg_delivery *d)
{
    if (atomic_fetch_sub(&d->outstanding, 1) == 1) {
        tg_loop_post(d->dl->loop, &d->finish);
    }
}

static void on_marked(struct tg_spool_op *op)
{
    struct tg_delivery *d =
        (struct tg_delivery *)(void *)((char *)op - offsetof(struct tg_delivery, mark));

    if (d->first != NULL) {
        d->first->answered(d->first, op->rc, op->u.mark.kept_status, &op->u.mark.kept);
    }
    tg_spool_blob_cleanup(&op->u.mark.kept);
    part_done(d);
}

static void on_deadline_answer(struct tg_spool_op *op)
{
    struct tg_delivery *d =
        (struct tg_delivery *)(void *)((char *)op - offsetof(struct tg_delivery, answer));

    d->first->answered(d->first, op->rc, op->u.answer.kept_status, &op->u.answer.kept);
    tg_spool_blob_cleanup(&op->u.answer.kept);
    part_done(d);
}

static void log_outcome(const struct tg_delivery *d, int state, int status, const char *reason,
                        int64_t wait_ms)
{
    static const char *const events[] = {
        "durable.retry",    "durable.delivering", "durable.delivered",
        "durable.rejected", "durable.dead",       "durable.unknown",
    };
    /* dead and unknown need an operator; a refusal is the client's to fix */
    enum tg_log_level lvl = state == TG_SPOOL_DEAD || state == TG_SPOOL_UNKNOWN ? TG_LOG_ERROR
                            : state == TG_SPOOL_REJECTED                        ? TG_LOG_WARN
                                                                                : TG_LOG_INFO;
    struct tg_logline l;

    tg_logline_begin(&l, lvl, NULL, events[state]);
    tg_logline_str(&l, "trace_id", d->trace_id);
    tg_logline_str(&l, "submission_id", d->id);
    tg_logline_str(&l, "route", d->route);
    tg_logline_int(&l, "attempt", d->attempt);
    tg_logline_int(&l, "upstream_status", status);
    if (reason != NULL && reason[0] != '\0') {
        tg_logline_str(&l, "reason", reason);
    }
    if (state == TG_SPOOL_QUEUED) {
        tg_logline_int(&l, "retry_in_ms", wait_ms);
    }
    tg_logline_end(&l);
}

/* Records the outcome: the mark goes to the spool (with the answer a waiting client gets, when
 * given), the attempt part is done. */
static void record(struct tg_delivery *d, int state, int status, const char *reason,
                   int64_t wait_ms, bool final_answer)
{
    struct tg_spool_mark *m = &d->mark.u.mark.in;

    d->recorded = true;
    d->mark.kind = TG_SPOOL_OP_MARK;
    d->mark.done = on_marked;
    d->mark.has_delivered = state == TG_SPOOL_DELIVERED;
    d->mark.u.mark.want_answer = d->first != NULL;
    m->id = d->id;
    m->state = state;
    m->upstream_status = status;
    m->reason = reason;
    m->now_ms = tg_spool_now_ms();
    m->next_ms = m->now_ms + wait_ms;
    m->hold = d->hold;
    if (d->first != NULL) {
        const struct tg_spool_blob *a = final_answer ? &d->sealed : d->first->accepted;
        m->answer = a->p;
        m->answer_len = a->len;
        m->answer_status = final_answer ? status : 202;
    }
    log_outcome(d, state, status, reason, wait_ms);
    if (state == TG_SPOOL_QUEUED) {
        tg_deliver_due(d->dl, d->route, tg_now_us() + (uint64_t)wait_ms * 1000u);
    }
    if (state == TG_SPOOL_DELIVERED) {
        atomic_fetch_add(&tg_stats.durable.delivered, 1);
        atomic_fetch_add(&tg_stats.durable.delivery_latency_sum_ms,
                         (uint64_t)(m->now_ms > d->created_ms ? m->now_ms - d->created_ms : 0));
    }
    atomic_fetch_add(&d->outstanding, 1);
    tg_spool_submit(d->dl->sp, &d->mark);
    part_done(d); /* the attempt */
}

void tg_delivery_skip(struct tg_delivery *d, const char *reason, int64_t retry_in_ms)
{
    atomic_fetch_add(&tg_stats.durable.attempts[TG_ATTEMPT_RETRY], 1);
    record(d, TG_SPOOL_QUEUED, 0, reason, retry_in_ms, false);
}

void tg_delivery_deadline(struct tg_delivery *d)
{
    struct tg_spool_op *op = &d->answer;

    if (d->first == NULL || d->sync_answered || d->recorded) {
        return;
    }
    d->sync_answered = true;
    op->kind = TG_SPOOL_OP_ANSWER;
    op->done = on_deadline_answer;
    op->u.answer.id = d->id;
    op->u.answer.status = 202;
    op->u.answer.blob = d->first->accepted->p;
    op->u.answer.len = d->first->accepted->len;
    atomic_fetch_add(&d->outstanding, 1);
    tg_spool_submit(d->dl->sp, op);
}

/* ---- the verdict ---------------------------------------------------------------------------- */

/* Retry-After in delta-seconds (429, 503): milliseconds, 0 when absent or a date. */
static int64_t retry_after_ms(struct tg_up_call *call)
{
    size_t pos = 0;
    const char *name;
    const char *value;

    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        char *end = NULL;
        long s;
        if (strcasecmp(name, "Retry-After") != 0) {
            continue;
        }
        errno = 0;
        s = strtol(value, &end, 10);
        if (errno == 0 && end != value && *end == '\0' && s >= 0 && s <= RETRY_AFTER_MAX_S) {
            return (int64_t)s * 1000;
        }
    }
    return 0;
}

/* The backend's answer as the client gets it (and gets again on a retry): sealed in d->sealed. */
static int seal_answer(struct tg_delivery *d, struct tg_up_call *call, int status)
{
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    struct tg_buf enc = {0};
    size_t n = 0, pos = 0, len = 0;
    const char *name;
    const char *value;
    const char *conn = NULL;
    char *body = tg_up_call_take_body(call, &len);
    int rc;

    while (tg_up_call_header_next(call, &pos, &name, &value)) {
        conn = strcasecmp(name, "Connection") == 0 ? value : conn;
    }
    pos = 0;
    while (n < TG_CODEC_HEADERS_MAX - 1 && tg_up_call_header_next(call, &pos, &name, &value)) {
        size_t nl = strlen(name);
        if (tg_header_passes_back(d->req.conf, name, nl, conn, conn == NULL ? 0 : strlen(conn))) {
            hdrs[n++] = (struct tg_kv){name, value, nl, strlen(value)};
        }
    }
    hdrs[n++] = (struct tg_kv){"Submission-Id", d->id, 13, strlen(d->id)};
    struct tg_spool_answer a = {status, hdrs, n, body, len};
    rc = tg_codec_answer_encode(&a, &enc);
    rc =
        rc != TG_OK ? rc : tg_spool_seal(d->dl->sp, d->id, "answer", enc.data, enc.len, &d->sealed);
    tg_buf_cleanup(&enc);
    free(body);
    return rc;
}

static const struct tg_durable_conf *conf_of(const struct tg_delivery *d,
                                             const struct tg_route **route)
{
    return tg_durable_of(d->req.conf->routes, d->route, route);
}

/* A retry, or dead when the record passed max_age. */
static void retry_or_die(struct tg_delivery *d, const struct tg_durable_conf *dc, int status,
                         const char *reason, int64_t at_least_ms)
{
    int64_t now = tg_spool_now_ms();
    int64_t wait = tg_durable_backoff_ms(&dc->retry, d->attempt);

    if (now >= d->age_ms + (int64_t)dc->retry.max_age_s * 1000) {
        atomic_fetch_add(&tg_stats.durable.attempts[TG_ATTEMPT_DEAD], 1);
        record(d, TG_SPOOL_DEAD, status, "max age reached", 0, false);
        return;
    }
    if (wait < at_least_ms) {
        wait = at_least_ms < (int64_t)dc->retry.cap_ms ? at_least_ms : (int64_t)dc->retry.cap_ms;
    }
    atomic_fetch_add(&tg_stats.durable.attempts[TG_ATTEMPT_RETRY], 1);
    record(d, TG_SPOOL_QUEUED, status, reason, wait, false);
}

static void on_done(void *arg, struct tg_up_call *call, int err)
{
    struct tg_delivery *d = arg;
    const struct tg_durable_conf *dc = conf_of(d, NULL);
    int status = err == TG_OK ? tg_up_call_status(call) : 0;
    bool sent = err == TG_OK || err == TG_ERESPTOOBIG || tg_up_call_sent(call);
    const char *why = err == TG_OK ? "" : tg_up_call_detail(call);
    int outcome;

    if (err == TG_OK) {
        tg_testhook_crash_point("after_upstream_send");
    }
    outcome = tg_durable_classify(dc, status, sent);
    switch (outcome) {
    case TG_ATTEMPT_DELIVERED:
    case TG_ATTEMPT_REJECTED: {
        bool answer = d->first != NULL && seal_answer(d, call, status) == TG_OK;
        atomic_fetch_add(&tg_stats.durable.attempts[outcome], 1);
        record(d, outcome == TG_ATTEMPT_DELIVERED ? TG_SPOOL_DELIVERED : TG_SPOOL_REJECTED, status,
               outcome == TG_ATTEMPT_REJECTED ? "refused by the backend" : "", 0, answer);
        return;
    }
    case TG_ATTEMPT_DUPLICATE:
        atomic_fetch_add(&tg_stats.durable.attempts[outcome], 1);
        record(d, TG_SPOOL_DELIVERED, status, "the backend had it already", 0, false);
        return;
    case TG_ATTEMPT_UNKNOWN:
        atomic_fetch_add(&tg_stats.durable.attempts[outcome], 1);
        record(d, TG_SPOOL_UNKNOWN, 0, why != NULL ? why : "no answer", 0, false);
        return;
    default:
        retry_or_die(d, dc, status, status > 0 ? "backend status" : why,
                     status > 0 ? retry_after_ms(call) : 0);
        return;
    }
}

/* ---- the request ---------------------------------------------------------------------------- */

/* The synthetic request the call hangs off: the record's trace id, a deadline of one attempt. */
static void make_req(struct tg_delivery *d, const struct tg_durable_conf *dc)
{
    struct tg_req *r = &d->req;
    size_t n = strlen(d->trace_id);

    tg_req_init(r);
    r->conf = tg_conf_ref(d->dl->conf);
    r->up = d->dl->up;
    r->loop = d->dl->loop;
    r->method = d->rq.method;
    r->start_us = tg_now_us();
    r->deadline_us = r->start_us + (uint64_t)dc->retry.attempt_timeout_ms * 1000u;
    memcpy(r->trace.id, d->trace_id, n + 1);
    if (!tg_trace_id_to_w3c(d->trace_id, n, r->trace.bin)) {
        uint8_t raw[16];
        char ignored[37];
        tg_trace_new_uuid(raw, ignored); /* the trace header still carries the record's id */
        memcpy(r->trace.bin, raw, sizeof(raw));
    }
    tg_hex_lower(r->trace.bin, 16, r->trace.w3c);
    r->trace.flags = 1;
    uint8_t span[8];
    tg_trace_new_span(span);
    tg_hex_lower(span, 8, r->trace.span);
}

void tg_delivery_start(struct tg_delivery *d)
{
    const struct tg_route *route = NULL;
    const struct tg_durable_conf *dc;
    const struct tg_upstream *u;
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX + EXTRA_HDRS];
    char key[TG_SPOOL_KEY_MAX + 3], at[40], attempt[16];
    size_t n = 0;
    int rc;

    atomic_init(&d->outstanding, 1); /* the attempt */
    dc = tg_durable_of(d->dl->conf->routes, d->route, &route);
    if (dc == NULL) {
        tg_req_init(&d->req);
        d->req.conf = tg_conf_ref(d->dl->conf);
        tg_delivery_skip(d, "route not in the conf", NO_ROUTE_WAIT_MS);
        return;
    }
    make_req(d, dc);
    d->hold = dc->hold_dead;
    u = ((const struct tg_proxy_conf *)route->policy.handler_conf)->upstream;
    for (size_t i = 0; i < d->rq.n_hdrs; i++) {
        hdrs[n++] = d->rq.hdrs[i];
    }
    snprintf(key, sizeof(key), "\"%s\"", d->key); /* the draft's sf-string */
    tg_spool_time(d->created_ms, at, sizeof(at));
    snprintf(attempt, sizeof(attempt), "%u", d->attempt);
    hdrs[n++] = (struct tg_kv){dc->forward_key_as, key, strlen(dc->forward_key_as), strlen(key)};
    hdrs[n++] = (struct tg_kv){"X-Submission-Id", d->id, 15, strlen(d->id)};
    hdrs[n++] = (struct tg_kv){"X-Submitted-At", at, 14, strlen(at)};
    hdrs[n++] = (struct tg_kv){"X-Delivery-Attempt", attempt, 18, strlen(attempt)};
    struct tg_up_request up = {
        .label = u->name,
        .method = d->rq.method,
        .upstream = u, /* the pool picks a usable target; its breaker and bulkhead apply */
        .path = d->rq.path,
        .hdrs = hdrs,
        .n_hdrs = n,
        .body = d->rq.body,
        .body_len = d->rq.body_len,
        .timeout_ms = dc->retry.attempt_timeout_ms,
        .connect_timeout_ms = u->connect_timeout_ms,
        .max_body = d->dl->conf->max_response_bytes,
    };
    rc = tg_up_start(d->dl->up, &d->req, &up, on_done, d, NULL);
    if (rc != TG_OK) {
        /* Not sent (no memory, the request's budget): safe to try again. */
        retry_or_die(d, dc, 0, tg_strerror(rc), 0);
        return;
    }
    d->started = true;
}
