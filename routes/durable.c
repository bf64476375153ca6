/* The worker's side of a durable route (routes/durable.h): check the key, store the submission
 * through the spool (never waiting on the loop), hand its first attempt to delivery, and answer
 * once the first answer stands: the backend's, a 202, or the first answer again for a retry. */
#include "routes/durable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "gateway/buf.h"
#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "gateway/testhook.h"
#include "gateway/wait.h"
#include "routes/deliver.h"
#include "routes/handler.h"
#include "routes/proxy.h"
#include "routes/submission.h"
#include "routes/table.h"
#include "spool/codec.h"
#include "spool/meta.h"
#include "spool/seal.h"
#include "spool/spool.h"

#define ACCEPTED_RETRY_AFTER "10" /* seconds: when polling the status resource makes sense */
#define CONFLICT_RETRY_AFTER "1"
#define SPOOL_RETRY_AFTER    "5"
#define LOCATION_MAX         512

/* One durable request: what it stores, the spool operations it runs, the first attempt it may
 * hand to delivery, and the answer the spool fixed. Shared by the worker, the spool's writer
 * and the delivery thread through the wait's holds. */
struct submission {
    struct tg_wait wait; /* first: the wait's callbacks get this pointer */
    struct tg_spool *sp;
    struct tg_conf *conf;             /* a reference: the route and its durable block stay valid */
    const struct tg_durable_conf *dc; /* in conf */
    struct tg_deliver_first first;    /* id, route, key, trace id, times, the request */
    struct tg_buf request;            /* the encoded request, plain */
    struct tg_spool_blob sealed_request;
    struct tg_spool_blob accepted; /* the sealed 202 for first.id */
    uint8_t scope[TG_SPOOL_MAC_LEN];
    uint8_t fingerprint[TG_SPOOL_MAC_LEN];
    uint8_t order[TG_SPOOL_MAC_LEN];
    bool ordered;
    bool key_minted;
    struct tg_spool_op put;
    struct tg_spool_op answer_op; /* a 202 for a record whose first request never got one */
    struct tg_spool_op mark;      /* when delivery is stopping: recorded as queued instead */
    struct tg_spool_blob adopted; /* the sealed 202 answer_op fixes */
    /* What the worker answers; written on the writer thread before the wake. */
    int result;                  /* TG_OK: answer below; else the error to answer */
    bool notified;               /* writer thread only: the answer was handed on */
    bool replay;                 /* an earlier request's answer, given again */
    int answer_status;           /* 0 with no answer kept: the status document instead */
    struct tg_spool_blob answer; /* sealed for answer_id */
    char answer_id[TG_SPOOL_ID_LEN + 1];
    struct tg_spool_meta meta; /* the record, for the status document */
};

static void release(struct tg_wait *w)
{
    struct submission *s = (struct submission *)(void *)w;

    tg_buf_cleanup(&s->request);
    tg_spool_blob_cleanup(&s->sealed_request);
    tg_spool_blob_cleanup(&s->accepted);
    tg_spool_blob_cleanup(&s->adopted);
    tg_spool_blob_cleanup(&s->answer);
    tg_spool_blob_cleanup(&s->put.u.put.out.answer);
    tg_spool_blob_cleanup(&s->answer_op.u.answer.kept);
    tg_spool_blob_cleanup(&s->mark.u.mark.kept);
    tg_conf_unref(s->conf);
    free(s);
}

/* ---- answers ----------------------------------------------------------------------------------
 */

/* Location: the status route's path with its one parameter replaced by id. */
static void location_of(const char *pattern, const char *id, char *out, size_t cap)
{
    const char *open = strchr(pattern, '{');
    const char *close = open != NULL ? strchr(open, '}') : NULL;

    if (close == NULL) {
        snprintf(out, cap, "%s", pattern);
        return;
    }
    snprintf(out, cap, "%.*s%s%s", (int)(open - pattern), pattern, id, close + 1);
}

/* The sealed 202 of record id (trace_id its request's): what the client is told when the
 * backend's answer did not come in time. */
static int seal_accepted(const struct submission *s, const char *id, const char *trace_id,
                         struct tg_spool_blob *out)
{
    char location[LOCATION_MAX];
    struct tg_buf enc = {0};
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "status", "queued", "submission_id", id, "trace_id", trace_id);
    char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc;

    json_decref(o);
    if (body == NULL) {
        return TG_ENOMEM;
    }
    location_of(s->dc->status_path, id, location, sizeof(location));
    struct tg_kv hdrs[] = {
        {"Content-Type", "application/json", 12, 16},
        {"Location", location, 8, strlen(location)},
        {"Retry-After", ACCEPTED_RETRY_AFTER, 11, strlen(ACCEPTED_RETRY_AFTER)},
        {"Submission-Id", id, 13, strlen(id)},
    };
    struct tg_spool_answer a = {202, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), body, strlen(body)};
    rc = tg_codec_answer_encode(&a, &enc);
    rc = rc != TG_OK ? rc : tg_spool_seal(s->sp, id, "answer", enc.data, enc.len, out);
    tg_buf_cleanup(&enc);
    free(body);
    return rc;
}

/* The kept answer, opened and decoded into req->resp exactly as it was first given. */
static int give_answer(struct tg_req *req, struct submission *s)
{
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    struct tg_spool_answer a;
    uint8_t *plain = NULL;
    size_t n = 0;
    char *body;
    int rc;

    if (s->answer.len == 0) {
        return tg_submission_answer(req, &s->meta);
    }
    rc = tg_spool_unseal(s->sp, s->answer_id, "answer", s->answer.p, s->answer.len, &plain, &n);
    rc = rc != TG_OK ? rc : tg_codec_answer_decode(plain, n, &a, hdrs);
    body = rc == TG_OK && a.body_len > 0 ? malloc(a.body_len) : NULL;
    if (rc == TG_OK && a.body_len > 0 && body == NULL) {
        rc = TG_ENOMEM;
    }
    if (rc == TG_OK) {
        req->resp.status = a.status;
        for (size_t i = 0; i < a.n_hdrs; i++) {
            tg_resp_add_headern(&req->resp, hdrs[i].name, hdrs[i].name_len, hdrs[i].value,
                                hdrs[i].value_len);
        }
        if (body != NULL) {
            memcpy(body, a.body, a.body_len);
        }
        tg_resp_set_body(&req->resp, body, a.body_len);
    }
    free(plain);
    return rc == TG_OK ? TG_OK : TG_EINTERNAL;
}

static void count_idem(int result)
{
    atomic_fetch_add(&tg_stats.durable.idempotency[result], 1);
}

/* On the worker's loop, once the spool fixed what this request answers. */
static void resume(struct tg_req *req, struct tg_wait *w)
{
    struct submission *s = (struct submission *)(void *)w;
    int rc = s->result;

    if (rc == TG_OK) {
        rc = give_answer(req, s);
    }
    if (rc != TG_OK) {
        tg_req_fail(req, rc,
                    rc == TG_EINPROGRESS ? "the first request with this key waits"
                    : rc == TG_EKEYREUSE ? "this key came with another request"
                    : rc == TG_ESPOOL    ? "the spool cannot store it now"
                                         : "the kept answer cannot be read");
        if (rc == TG_EINPROGRESS || rc == TG_ESPOOL) {
            tg_resp_add_header(&req->resp, "Retry-After",
                               rc == TG_ESPOOL ? SPOOL_RETRY_AFTER : CONFLICT_RETRY_AFTER);
        }
    } else if (s->replay) {
        tg_resp_add_header(&req->resp, "Idempotent-Replayed", "true");
    }
    if (s->key_minted) {
        char quoted[TG_SPOOL_KEY_MAX + 3];
        snprintf(quoted, sizeof(quoted), "\"%s\"", s->first.key);
        tg_resp_add_header(&req->resp, "Idempotency-Key", quoted);
    }
    tg_testhook_crash_point("before_reply");
    tg_req_complete(req);
}

/* Writer thread: the answer is decided (or the spool failed): hand it to the worker, once. */
static void notify(struct submission *s, int result, int status, struct tg_spool_blob *answer,
                   const char *answer_id)
{
    if (s->notified) {
        tg_spool_blob_cleanup(answer);
        return;
    }
    s->notified = true;
    s->result = result;
    s->answer_status = status;
    s->answer = *answer;
    *answer = (struct tg_spool_blob){0};
    snprintf(s->answer_id, sizeof(s->answer_id), "%s", answer_id);
    tg_wait_wake(&s->wait);
}

static void log_accepted(const struct submission *s, bool attempt)
{
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_INFO, NULL, "durable.accepted");
    tg_logline_str(&l, "trace_id", s->first.trace_id);
    tg_logline_str(&l, "submission_id", s->first.id);
    tg_logline_str(&l, "route", s->first.route);
    tg_logline_bool(&l, "attempt_now", attempt);
    tg_logline_end(&l);
}

/* ---- after the spool ------------------------------------------------------------------------- */

/* Writer thread: the 202 for a record whose first request never got an answer stands now. */
static void on_adopted(struct tg_spool_op *op)
{
    struct submission *s =
        (struct submission *)(void *)((char *)op - offsetof(struct submission, answer_op));

    notify(s, op->rc == TG_OK ? TG_OK : TG_ESPOOL, op->u.answer.kept_status, &op->u.answer.kept,
           s->meta.id);
    tg_wait_drop(&s->wait);
}

/* Writer thread: the record exists, but its first request went away unanswered (a crash, a
 * client that left): this request gives its answer, a 202 fixed now. */
static void adopt(struct submission *s)
{
    if (seal_accepted(s, s->meta.id, s->meta.trace_id, &s->adopted) != TG_OK) {
        struct tg_spool_blob none = {0};
        notify(s, TG_ESPOOL, 0, &none, "");
        return;
    }
    s->answer_op.kind = TG_SPOOL_OP_ANSWER;
    s->answer_op.done = on_adopted;
    s->answer_op.u.answer.id = s->meta.id;
    s->answer_op.u.answer.status = 202;
    s->answer_op.u.answer.blob = s->adopted.p;
    s->answer_op.u.answer.len = s->adopted.len;
    tg_wait_hold(&s->wait);
    tg_spool_submit(s->sp, &s->answer_op);
}

/* Writer thread: the record of a key that was there already. */
static void existing(struct submission *s)
{
    struct tg_spool_put_result *out = &s->put.u.put.out;
    struct tg_spool_blob none = {0};

    s->meta = out->meta;
    if (!out->same) {
        count_idem(TG_IDEM_MISMATCH);
        notify(s, TG_EKEYREUSE, 0, &none, "");
    } else if (out->meta.answer_status != 0) {
        count_idem(TG_IDEM_REPLAY);
        s->replay = true;
        notify(s, TG_OK, out->meta.answer_status, &out->answer, out->meta.id);
    } else if (out->meta.in_progress) {
        count_idem(TG_IDEM_CONFLICT);
        notify(s, TG_EINPROGRESS, 0, &none, "");
    } else {
        count_idem(TG_IDEM_REPLAY);
        adopt(s);
    }
}

/* Writer thread: delivery stopped before this record's first attempt: it waits in the queue,
 * and the client is told 202. */
static void on_not_attempted(struct tg_spool_op *op)
{
    struct submission *s =
        (struct submission *)(void *)((char *)op - offsetof(struct submission, mark));

    notify(s, op->rc == TG_OK ? TG_OK : TG_ESPOOL, op->u.mark.kept_status, &op->u.mark.kept,
           s->first.id);
    tg_wait_drop(&s->wait);
}

static void queue_instead(struct submission *s)
{
    struct tg_spool_mark *m = &s->mark.u.mark.in;

    s->mark.kind = TG_SPOOL_OP_MARK;
    s->mark.done = on_not_attempted;
    s->mark.u.mark.want_answer = true;
    m->id = s->first.id;
    m->state = TG_SPOOL_QUEUED;
    m->reason = "not attempted: delivery stopping";
    m->hold = s->dc->hold_dead;
    m->now_ms = tg_spool_now_ms();
    m->next_ms = m->now_ms;
    m->answer = s->accepted.p;
    m->answer_len = s->accepted.len;
    m->answer_status = 202;
    tg_wait_hold(&s->wait);
    tg_spool_submit(s->sp, &s->mark);
}

/* Writer thread: the put committed (or failed). */
static void on_put(struct tg_spool_op *op)
{
    struct submission *s =
        (struct submission *)(void *)((char *)op - offsetof(struct submission, put));
    struct tg_spool_put_result *out = &op->u.put.out;
    struct tg_spool_blob none = {0};

    if (op->rc != TG_OK) {
        notify(s, TG_ESPOOL, 0, &none, "");
    } else if (!out->created) {
        existing(s);
    } else {
        count_idem(TG_IDEM_NEW);
        atomic_fetch_add(&tg_stats.durable.accepted, 1);
        log_accepted(s, out->attempt);
        s->meta = out->meta;
        if (!out->attempt) {
            struct tg_spool_blob copy = s->accepted;
            s->accepted = (struct tg_spool_blob){0};
            notify(s, TG_OK, 202, &copy, s->first.id);
        } else {
            tg_wait_hold(&s->wait); /* delivery's, until first.release */
            if (tg_deliver_first(&s->first) != TG_OK) {
                tg_wait_drop(&s->wait);
                queue_instead(s);
            }
        }
    }
    tg_wait_drop(&s->wait); /* the writer's */
}

/* ---- delivery's callbacks -------------------------------------------------------------------- */

static void first_answered(struct tg_deliver_first *f, int rc, int status,
                           struct tg_spool_blob *kept)
{
    struct submission *s =
        (struct submission *)(void *)((char *)f - offsetof(struct submission, first));

    notify(s, rc == TG_OK ? TG_OK : TG_ESPOOL, status, kept, f->id);
}

static void first_release(struct tg_deliver_first *f)
{
    struct submission *s =
        (struct submission *)(void *)((char *)f - offsetof(struct submission, first));

    tg_wait_drop(&s->wait);
}

/* ---- the request ----------------------------------------------------------------------------- */

/* The Idempotency-Key: exactly one, well-formed; or, where the route allows, a new one. */
static int take_key(struct tg_req *req, struct submission *s)
{
    size_t len = 0;
    size_t count = tg_req_header_count(req, "Idempotency-Key");
    const char *v = tg_req_header(req, "Idempotency-Key", &len);

    if (count > 1) {
        return tg_req_fail(req, TG_EKEY, "more than one Idempotency-Key");
    }
    if (v == NULL && s->dc->require_key) {
        return tg_req_fail(req, TG_EKEY, "Idempotency-Key required on this route");
    }
    if (v == NULL) {
        tg_spool_new_id(s->first.key);
        s->key_minted = true;
        return TG_OK;
    }
    if (tg_durable_parse_key(v, len, s->first.key) != TG_OK) {
        return tg_req_fail(req, TG_EKEY, "malformed Idempotency-Key");
    }
    return TG_OK;
}

/* The request as delivery will send it: the upstream path, the stored headers, the body. */
static int encode_request(struct tg_req *req, struct submission *s)
{
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    char path[TG_URL_MAX];
    size_t n = 0;

    if (tg_proxy_target(req, path, sizeof(path)) < 0) {
        return TG_EINVAL;
    }
    for (size_t i = 0; i < req->n_hdrs && n < TG_CODEC_HEADERS_MAX; i++) {
        for (size_t j = 0; j < s->dc->n_store_headers; j++) {
            if (tg_header_name_is(req->hdrs[i].name, req->hdrs[i].name_len,
                                  s->dc->store_headers[j])) {
                hdrs[n++] = req->hdrs[i];
                break;
            }
        }
    }
    struct tg_spool_request q = {req->method, path, hdrs, n, req->body.data, req->body.len};
    return tg_codec_request_encode(&q, &s->request);
}

/* The MACs: the key's scope, the request's fingerprint, the ordering value (route-bound). */
static int make_macs(struct tg_req *req, struct submission *s)
{
    const char *route = req->policy->name;
    size_t scope_len = 0;
    size_t order_len = 0;
    const char *scope = s->dc->key_scope_header != NULL
                            ? tg_req_header(req, s->dc->key_scope_header, &scope_len)
                            : NULL;
    const char *order = s->dc->order_by_header != NULL
                            ? tg_req_header(req, s->dc->order_by_header, &order_len)
                            : NULL;
    struct tg_seal_part sp[] = {{"scope", 5}, {route, strlen(route)}, {scope, scope_len}};
    struct tg_seal_part fp[] = {{"fingerprint", 11},
                                {route, strlen(route)},
                                {req->method, strlen(req->method)},
                                {req->target, req->target_len},
                                {req->body.data, req->body.len}};
    struct tg_seal_part op[] = {{"order", 5}, {route, strlen(route)}, {order, order_len}};
    int rc = tg_spool_mac(s->sp, sp, 3, s->scope);

    rc = rc != TG_OK ? rc : tg_spool_mac(s->sp, fp, 5, s->fingerprint);
    s->ordered = order != NULL && order_len > 0;
    return rc != TG_OK || !s->ordered ? rc : tg_spool_mac(s->sp, op, 3, s->order);
}

static void fill_put(struct submission *s)
{
    struct tg_spool_put *p = &s->put.u.put.in;

    s->put.kind = TG_SPOOL_OP_PUT;
    s->put.done = on_put;
    p->id = s->first.id;
    p->route = s->first.route;
    p->key = s->first.key;
    p->trace_id = s->first.trace_id;
    p->scope = s->scope;
    p->fingerprint = s->fingerprint;
    p->order_key = s->ordered ? s->order : NULL;
    p->request = s->sealed_request.p;
    p->request_len = s->sealed_request.len;
    p->accepted = s->accepted.p;
    p->accepted_len = s->accepted.len;
    p->attempt = s->dc->mode == TG_DURABLE_ON_FAILURE;
    p->hold = s->dc->hold_dead;
    p->now_ms = s->first.created_ms;
    s->first.request = (const uint8_t *)s->request.data;
    s->first.request_len = s->request.len;
    s->first.accepted = &s->accepted;
    s->first.sync_deadline_us = tg_now_us() + (uint64_t)s->dc->sync_wait_ms * 1000u;
    s->first.answered = first_answered;
    s->first.release = first_release;
}

/* Everything that can be done on the loop before the spool: key, encoding, MACs, seals. */
static int prepare(struct tg_req *req, struct submission *s)
{
    const struct tg_proxy_conf *pc = req->policy->handler_conf;
    int rc;

    s->dc = pc->durable;
    snprintf(s->first.route, sizeof(s->first.route), "%s", req->policy->name);
    snprintf(s->first.trace_id, sizeof(s->first.trace_id), "%s", req->trace.id);
    tg_spool_new_id(s->first.id);
    s->first.created_ms = tg_spool_now_ms();
    rc = take_key(req, s);
    if (rc != TG_OK) {
        return rc; /* TG_MW_DONE: the 400 is made */
    }
    rc = encode_request(req, s);
    rc = rc != TG_OK ? rc : make_macs(req, s);
    rc = rc != TG_OK ? rc
                     : tg_spool_seal(s->sp, s->first.id, "request", s->request.data, s->request.len,
                                     &s->sealed_request);
    rc = rc != TG_OK ? rc : seal_accepted(s, s->first.id, s->first.trace_id, &s->accepted);
    if (rc != TG_OK) {
        return tg_req_fail(req, rc == TG_EINVAL ? TG_EINVAL : TG_EINTERNAL,
                           rc == TG_EINVAL ? "upstream url too long" : "cannot seal");
    }
    fill_put(s);
    return TG_OK;
}

int tg_durable_serve(struct tg_req *req)
{
    struct tg_spool *sp = tg_spool_current();
    struct submission *s;
    int rc;

    if (sp == NULL || !tg_spool_accepting(sp)) {
        tg_req_fail(req, TG_ESPOOL, sp == NULL ? "no spool" : "spool full or failed");
        tg_resp_add_header(&req->resp, "Retry-After", SPOOL_RETRY_AFTER);
        return TG_MW_DONE;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return TG_ENOMEM;
    }
    s->sp = sp;
    s->conf = tg_conf_ref(req->conf);
    if (tg_wait_init(&s->wait, req, resume, release) != TG_OK) {
        tg_conf_unref(s->conf);
        free(s);
        return TG_ENOMEM;
    }
    rc = prepare(req, s);
    if (rc != TG_OK) {
        tg_wait_cancel(req); /* frees s: nothing else holds it */
        return rc;
    }
    tg_wait_hold(&s->wait); /* the writer's, until on_put */
    tg_spool_submit(sp, &s->put);
    return TG_MW_ASYNC;
}

void tg_durable_cancel(struct tg_req *req, int err)
{
    (void)err;
    /* What was stored stays stored and is delivered; a retry with the same key finds it. */
    tg_wait_cancel(req);
}
