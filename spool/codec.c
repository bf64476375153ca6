/* The byte layout of stored requests and answers (spool/codec.h). */
#include "spool/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/buf.h"
#include "gateway/req.h"

#define TAG_REQUEST 'R'
#define TAG_ANSWER  'A'
#define STATUS_MAX  8

static int put_item(struct tg_buf *b, const void *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    int rc;

    if (n > UINT32_MAX) {
        return TG_EINVAL;
    }
    rc = tg_buf_append(b, len, sizeof(len));
    rc = rc != TG_OK || n == 0 ? rc : tg_buf_append(b, p, n);
    return rc != TG_OK ? rc : tg_buf_append(b, "", 1);
}

static int put_str(struct tg_buf *b, const char *s)
{
    return put_item(b, s, strlen(s));
}

struct reader {
    const uint8_t *p;
    size_t len, off;
};

/* The next item: *s points at its bytes (NUL-terminated in place), *n its length. */
static int get_item(struct reader *r, const char **s, size_t *n)
{
    uint32_t l;

    if (r->len - r->off < 4) {
        return TG_EINVAL;
    }
    l = (uint32_t)r->p[r->off] << 24 | (uint32_t)r->p[r->off + 1] << 16 |
        (uint32_t)r->p[r->off + 2] << 8 | r->p[r->off + 3];
    r->off += 4;
    if (r->len - r->off < (size_t)l + 1 || r->p[r->off + l] != '\0') {
        return TG_EINVAL;
    }
    *s = (const char *)r->p + r->off;
    *n = l;
    r->off += (size_t)l + 1;
    return TG_OK;
}

static int put_headers(struct tg_buf *b, const struct tg_kv *hdrs, size_t n)
{
    char count[16];
    int rc;

    if (n > TG_CODEC_HEADERS_MAX) {
        return TG_EINVAL;
    }
    snprintf(count, sizeof(count), "%zu", n);
    rc = put_str(b, count);
    for (size_t i = 0; rc == TG_OK && i < n; i++) {
        rc = put_item(b, hdrs[i].name, hdrs[i].name_len);
        rc = rc != TG_OK ? rc : put_item(b, hdrs[i].value, hdrs[i].value_len);
    }
    return rc;
}

static int get_headers(struct reader *r, struct tg_kv *hdrs, size_t *n)
{
    const char *s;
    size_t len;
    char *end;
    unsigned long count;

    if (get_item(r, &s, &len) != TG_OK) {
        return TG_EINVAL;
    }
    count = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || count > TG_CODEC_HEADERS_MAX) {
        return TG_EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        struct tg_kv *kv = &hdrs[i];
        if (get_item(r, &kv->name, &kv->name_len) != TG_OK ||
            get_item(r, &kv->value, &kv->value_len) != TG_OK) {
            return TG_EINVAL;
        }
    }
    *n = count;
    return TG_OK;
}

int tg_codec_request_encode(const struct tg_spool_request *q, struct tg_buf *out)
{
    static const char tag = TAG_REQUEST;
    int rc = tg_buf_append(out, &tag, 1);

    rc = rc != TG_OK ? rc : put_str(out, q->method);
    rc = rc != TG_OK ? rc : put_str(out, q->path);
    rc = rc != TG_OK ? rc : put_headers(out, q->hdrs, q->n_hdrs);
    return rc != TG_OK ? rc : put_item(out, q->body, q->body_len);
}

int tg_codec_request_decode(const uint8_t *p, size_t len, struct tg_spool_request *q,
                            struct tg_kv *hdrs)
{
    struct reader r = {p, len, 1};
    size_t n;

    memset(q, 0, sizeof(*q));
    if (len < 1 || p[0] != TAG_REQUEST || get_item(&r, &q->method, &n) != TG_OK ||
        get_item(&r, &q->path, &n) != TG_OK || get_headers(&r, hdrs, &q->n_hdrs) != TG_OK ||
        get_item(&r, &q->body, &q->body_len) != TG_OK || r.off != len) {
        return TG_EINVAL;
    }
    q->hdrs = hdrs;
    return TG_OK;
}

int tg_codec_answer_encode(const struct tg_spool_answer *a, struct tg_buf *out)
{
    static const char tag = TAG_ANSWER;
    char status[STATUS_MAX];
    int rc = tg_buf_append(out, &tag, 1);

    snprintf(status, sizeof(status), "%d", a->status);
    rc = rc != TG_OK ? rc : put_str(out, status);
    rc = rc != TG_OK ? rc : put_headers(out, a->hdrs, a->n_hdrs);
    return rc != TG_OK ? rc : put_item(out, a->body, a->body_len);
}

int tg_codec_answer_decode(const uint8_t *p, size_t len, struct tg_spool_answer *a,
                           struct tg_kv *hdrs)
{
    struct reader r = {p, len, 1};
    const char *status;
    size_t n;
    char *end;
    long v;

    memset(a, 0, sizeof(*a));
    if (len < 1 || p[0] != TAG_ANSWER || get_item(&r, &status, &n) != TG_OK) {
        return TG_EINVAL;
    }
    v = strtol(status, &end, 10);
    if (end == status || *end != '\0' || v < 100 || v > 599 ||
        get_headers(&r, hdrs, &a->n_hdrs) != TG_OK ||
        get_item(&r, &a->body, &a->body_len) != TG_OK || r.off != len) {
        return TG_EINVAL;
    }
    a->status = (int)v;
    a->hdrs = hdrs;
    return TG_OK;
}
