#include "gateway/req.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "gateway/conf.h"
#include "gateway/err.h"

uint64_t tg_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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

int tg_buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap == 0 ? 512 : *cap;
        char *p;
        while (c < *len + n + 1) {
            c *= 2;
        }
        p = realloc(*buf, c);
        if (p == NULL) {
            return TG_ENOMEM;
        }
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return TG_OK;
}

int tg_resp_add_headern(struct tg_resp *resp, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    size_t was = resp->hdrs_len;

    /* Each append leaves a NUL after what it wrote: counting it in keeps "name\0value\0". */
    if (tg_buf_append(&resp->hdrs, &resp->hdrs_len, &resp->hdrs_cap, name, name_len) != TG_OK) {
        return TG_ENOMEM;
    }
    resp->hdrs_len++;
    if (tg_buf_append(&resp->hdrs, &resp->hdrs_len, &resp->hdrs_cap, value, value_len) != TG_OK) {
        resp->hdrs_len = was;
        return TG_ENOMEM;
    }
    resp->hdrs_len++;
    resp->n_hdrs++;
    return TG_OK;
}

int tg_resp_add_header(struct tg_resp *resp, const char *name, const char *value)
{
    return tg_resp_add_headern(resp, name, strlen(name), value, strlen(value));
}

bool tg_resp_header_next(const struct tg_resp *resp, size_t *pos, const char **name,
                         const char **value)
{
    if (*pos >= resp->hdrs_len) {
        return false;
    }
    *name = resp->hdrs + *pos;
    *pos += strlen(*name) + 1;
    *value = resp->hdrs + *pos;
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
    free(resp->hdrs);
    memset(resp, 0, sizeof(*resp));
}

int tg_req_fail_status(struct tg_req *req, int status, int err, const char *message)
{
    json_t *o;
    char *text;

    req->err = err;
    if (message == NULL) {
        message = tg_strerror(err);
    }
    /* Anything an upstream said is dropped: the client sees only the gateway's verdict. */
    tg_resp_cleanup(&req->resp);
    req->resp.status = status;
    o = json_pack("{s:s, s:s}", "error", message, "trace_id", req->trace_id);
    text = o == NULL ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text != NULL) {
        tg_resp_set_body(&req->resp, text, strlen(text));
    }
    tg_resp_add_header(&req->resp, "Content-Type", "application/json");
    return TG_MW_DONE;
}

int tg_req_fail(struct tg_req *req, int err, const char *message)
{
    return tg_req_fail_status(req, tg_err_http_status(err), err, message);
}

void tg_req_complete(struct tg_req *req)
{
    if (req->completed) {
        return;
    }
    req->completed = true;
    if (req->complete_fn != NULL) {
        req->complete_fn(req);
    }
}

void tg_req_free(struct tg_req *req)
{
    if (req == NULL) {
        return;
    }
    assert(req->pending == 0);
    if (req->handler_free != NULL) {
        req->handler_free(req);
    }
    free(req->match);
    free(req->target);
    free(req->hdrs);
    free(req->tracestate);
    free(req->body);
    tg_resp_cleanup(&req->resp);
    tg_conf_unref(req->conf);
    free(req);
}
