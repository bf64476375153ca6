#include "gateway/req.h"

#include <assert.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/handler.h"
#include "gateway/stats.h"

/* One allocation of request memory; the caller's bytes follow the header. */
struct tg_req_mem {
    struct tg_req_mem *next; /* older allocations */
    void (*dispose)(void *p);
    const void *key;
    alignas(max_align_t) unsigned char data[];
};

uint64_t tg_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void tg_req_init(struct tg_req *req)
{
    memset(req, 0, sizeof(*req));
    tg_list_init(&req->calls);
}

void *tg_req_alloc(struct tg_req *req, const void *key, size_t size, void (*dispose)(void *p))
{
    struct tg_req_mem *m = calloc(1, sizeof(*m) + size);

    if (m == NULL) {
        return NULL;
    }
    m->dispose = dispose;
    m->key = key;
    m->next = req->mem;
    req->mem = m;
    return m->data;
}

void *tg_req_get(const struct tg_req *req, const void *key)
{
    for (struct tg_req_mem *m = req->mem; m != NULL; m = m->next) {
        if (m->key == key && key != NULL) {
            return m->data;
        }
    }
    return NULL;
}

char *tg_req_strndup(struct tg_req *req, const char *s, size_t len)
{
    char *p = tg_req_alloc(req, NULL, len + 1, NULL);

    if (p != NULL) {
        memcpy(p, s, len);
    }
    return p;
}

uint64_t tg_req_remaining_ms(const struct tg_req *req)
{
    uint64_t now;

    if (req->deadline_us == 0) {
        return UINT64_MAX;
    }
    now = tg_now_us();
    if (now >= req->deadline_us) {
        return 0;
    }
    /* Round up: 300 us left is still a budget of 1 ms, not 0. */
    return (req->deadline_us - now + 999) / 1000;
}

const char *tg_req_header(const struct tg_req *req, const char *name, size_t *len)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (kv->name_len == n && strncasecmp(kv->name, name, n) == 0) {
            if (len != NULL) {
                *len = kv->value_len;
            }
            return kv->value;
        }
    }
    return NULL;
}

size_t tg_req_header_count(const struct tg_req *req, const char *name)
{
    size_t n = strlen(name);
    size_t count = 0;

    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (kv->name_len == n && strncasecmp(kv->name, name, n) == 0) {
            count++;
        }
    }
    return count;
}

int tg_resp_add_headern(struct tg_resp *resp, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    struct tg_buf *b = &resp->hdrs;
    size_t was = b->len;

    /* "name\0value\0": each NUL appended on its own, so that no byte past name[name_len] or
     * value[value_len] is read (found by tests/fuzz/fuzz_resp_header.c: a line at the end of
     * curl's buffer has nothing after it). */
    if (tg_buf_append(b, name, name_len) != TG_OK || tg_buf_append(b, "", 1) != TG_OK ||
        tg_buf_append(b, value, value_len) != TG_OK || tg_buf_append(b, "", 1) != TG_OK) {
        b->len = was;
        return TG_ENOMEM;
    }
    return TG_OK;
}

int tg_resp_add_header(struct tg_resp *resp, const char *name, const char *value)
{
    return tg_resp_add_headern(resp, name, strlen(name), value, strlen(value));
}

bool tg_resp_header_next(const struct tg_resp *resp, size_t *pos, const char **name,
                         const char **value)
{
    const struct tg_buf *b = &resp->hdrs;

    if (*pos >= b->len) {
        return false;
    }
    *name = b->data + *pos;
    *pos += strlen(*name) + 1;
    *value = b->data + *pos;
    *pos += strlen(*value) + 1;
    return true;
}

const char *tg_resp_header_get(const struct tg_resp *resp, const char *name)
{
    size_t pos = 0;
    const char *n;
    const char *v;

    while (tg_resp_header_next(resp, &pos, &n, &v)) {
        if (strcasecmp(n, name) == 0) {
            return v;
        }
    }
    return NULL;
}

void tg_resp_set_body(struct tg_resp *resp, char *body, size_t len)
{
    free(resp->body);
    resp->body = body;
    resp->body_len = len;
}

void tg_resp_cleanup(struct tg_resp *resp)
{
    free(resp->body);
    tg_buf_cleanup(&resp->hdrs);
    memset(resp, 0, sizeof(*resp));
}

/* The one error body: {"error", "trace_id"} and, where the route exposes errors, "detail" and
 * "backend". NULL when out of memory. */
static char *error_body(const struct tg_req *req, int err, const char *detail)
{
    json_t *o = json_object();
    char *text = NULL;
    bool expose = req->policy != NULL && req->policy->expose_errors;

    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "error", json_string(tg_strerror(err))) != 0 ||
        json_object_set_new(o, "trace_id", json_string(req->trace.id)) != 0) {
        goto out;
    }
    if (expose && req->end.backend != NULL &&
        json_object_set_new(o, "backend", json_string(req->end.backend)) != 0) {
        goto out;
    }
    if (expose && detail != NULL && json_object_set_new(o, "detail", json_string(detail)) != 0) {
        goto out;
    }
    text = json_dumps(o, JSON_COMPACT);
out:
    json_decref(o);
    return text;
}

int tg_req_fail(struct tg_req *req, int err, const char *detail)
{
    char *text;

    req->end.err = err;
    req->end.detail = detail;
    text = error_body(req, err, detail);
    /* Anything an upstream said is dropped: the client sees only the gateway's verdict. */
    tg_resp_cleanup(&req->resp);
    req->resp.status = tg_err_http_status(err);
    if (text != NULL) {
        tg_resp_set_body(&req->resp, text, strlen(text));
    }
    tg_resp_add_header(&req->resp, "Content-Type", "application/json");
    return TG_MW_DONE;
}

void tg_req_complete(struct tg_req *req)
{
    enum tg_req_phase was = req->phase;

    if (was >= TG_REQ_ANSWERED) {
        return;
    }
    req->phase = TG_REQ_ANSWERED;
    /* While the handler still runs on the stack, its caller sees the phase and answers. */
    if (was == TG_REQ_WAITING && req->on_complete != NULL) {
        req->on_complete(req);
    }
}

void tg_req_cancel(struct tg_req *req, int err)
{
    const struct tg_handler_ops *h = req->policy != NULL ? req->policy->handler : NULL;

    req->cancelled = true;
    if (h != NULL && h->cancel != NULL && (req->phase == TG_REQ_WAITING || req->pending > 0)) {
        h->cancel(req, err);
    }
    if (req->phase < TG_REQ_ANSWERED && req->resp.status == 0) {
        tg_req_fail(req, err, tg_err_cancel_reason(err));
    }
    tg_req_complete(req);
}

size_t tg_req_stream_above(const struct tg_req *req)
{
    const struct tg_handler_ops *h = req->policy != NULL ? req->policy->handler : NULL;

    return h != NULL && h->stream_body_above != NULL ? h->stream_body_above(req) : SIZE_MAX;
}

bool tg_req_end(struct tg_req *req, bool answer_sent)
{
    struct tg_req_end *e = &req->end;

    if (req->phase == TG_REQ_DONE) {
        return false;
    }
    req->phase = TG_REQ_DONE;
    e->duration_us = tg_now_us() - req->start_us;
    if (answer_sent || e->truncated) {
        e->status = req->resp.status;
    } else {
        e->status = tg_err_http_status(TG_ECANCELED);
        e->client_gone = true;
        if (e->err == TG_OK) {
            e->err = TG_ECANCELED;
            e->detail = "client left before the answer was sent";
        }
    }
    if (req->stats != NULL) {
        tg_stats_count_end(req->stats, req);
    }
    return true;
}

void tg_req_cleanup(struct tg_req *req)
{
    struct tg_req_mem *m = req->mem;

    assert(req->pending == 0);
    /* Newest first: state may refer to what was allocated before it. */
    while (m != NULL) {
        struct tg_req_mem *next = m->next;
        if (m->dispose != NULL) {
            m->dispose(m->data);
        }
        free(m);
        m = next;
    }
    req->mem = NULL;
    req->hdrs = NULL;
    req->trace.state = NULL;
    req->match = NULL;
    tg_buf_cleanup(&req->body);
    tg_resp_cleanup(&req->resp);
    tg_conf_unref(req->conf);
    req->conf = NULL;
}
