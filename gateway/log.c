#include "gateway/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/digits.h"
#include "gateway/req.h"

static atomic_int log_threshold = TG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Worker threads gather their lines and write them once per loop pass: one write(2) for many
 * lines instead of one per line. Other threads write each line at once. */
#define BATCH_MAX ((size_t)64 * 1024)
static _Thread_local char *batch;
static _Thread_local size_t batch_len;

/* The formatted second is cached per thread: gmtime_r once a second, not once a line. */
static _Thread_local time_t cached_sec = -1;
static _Thread_local char cached_prefix[32];
static _Thread_local size_t cached_len;

void tg_log_set_level(enum tg_log_level lvl)
{
    atomic_store(&log_threshold, (int)lvl);
}

static void put(struct tg_logline *l, const char *s, size_t n)
{
    if (l->len + n >= sizeof(l->buf) - 2) {
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_escaped(struct tg_logline *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[8];
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            continue; /* copied with the rest of its run */
        }
        put(l, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(l, tmp, 2);
        } else {
            /* Control and non-ASCII bytes are escaped so a line can never be split or forged. */
            tmp[0] = '\\';
            tmp[1] = 'u';
            tmp[2] = '0';
            tmp[3] = '0';
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 15];
            put(l, tmp, 6);
        }
    }
    put(l, s + run, n - run);
}

static void put_key(struct tg_logline *l, const char *key)
{
    put(l, ",\"", 2);
    put(l, key, strlen(key));
    put(l, "\":", 2);
}

static void put_ts(struct tg_logline *l)
{
    struct timespec ts;
    char tail[6];
    unsigned ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        cached_len = strftime(cached_prefix, sizeof(cached_prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    ms = (unsigned)(ts.tv_nsec / 1000000);
    tail[0] = '.';
    tail[1] = (char)('0' + ms / 100);
    tail[2] = (char)('0' + ms / 10 % 10);
    tail[3] = (char)('0' + ms % 10);
    tail[4] = 'Z';
    tail[5] = '"';
    put(l, "{\"ts\":\"", 7);
    put(l, cached_prefix, cached_len);
    put(l, tail, 6);
}

static void begin(struct tg_logline *l, enum tg_log_level lvl, const struct tg_req *req,
                  const char *event, bool always)
{
    l->len = 0;
    l->truncated = 0;
    l->skip = !always && (int)lvl < atomic_load_explicit(&log_threshold, memory_order_relaxed);
    if (l->skip) {
        return;
    }
    put_ts(l);
    tg_logline_str(l, "level", level_names[lvl]);
    tg_logline_str(l, "event", event);
    if (req != NULL && req->trace.id[0] != '\0') {
        tg_logline_str(l, "trace_id", req->trace.id);
        if (req->trace.span[0] != '\0') {
            tg_logline_str(l, "span_id", req->trace.span);
        }
    }
}

void tg_logline_begin(struct tg_logline *l, enum tg_log_level lvl, const struct tg_req *req,
                      const char *event)
{
    begin(l, lvl, req, event, false);
}

void tg_logline_begin_always(struct tg_logline *l, enum tg_log_level lvl, const char *event)
{
    begin(l, lvl, NULL, event, true);
}

void tg_logline_strn(struct tg_logline *l, const char *key, const char *value, size_t len)
{
    if (l->skip || value == NULL) {
        return;
    }
    put_key(l, key);
    put(l, "\"", 1);
    put_escaped(l, value, len);
    put(l, "\"", 1);
}

void tg_logline_str(struct tg_logline *l, const char *key, const char *value)
{
    if (value != NULL) {
        tg_logline_strn(l, key, value, strlen(value));
    }
}

void tg_logline_int(struct tg_logline *l, const char *key, int64_t n)
{
    char tmp[24];
    char *p;

    if (l->skip) {
        return;
    }
    p = tg_u64_digits_before(n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n, tmp + sizeof(tmp));
    if (n < 0) {
        *--p = '-';
    }
    put_key(l, key);
    put(l, p, (size_t)(tmp + sizeof(tmp) - p));
}

void tg_logline_bool(struct tg_logline *l, const char *key, int b)
{
    if (l->skip) {
        return;
    }
    put_key(l, key);
    if (b) {
        put(l, "true", 4);
    } else {
        put(l, "false", 5);
    }
}

void tg_logline_ms(struct tg_logline *l, const char *key, double ms)
{
    uint64_t us = ms <= 0 ? 0 : (uint64_t)(ms * 1000.0 + 0.5);
    char tmp[32];
    char *end = tmp + sizeof(tmp);
    char *p = end;

    if (l->skip) {
        return;
    }
    /* "12.345": whole milliseconds, then exactly three decimals. */
    for (int i = 0; i < 3; i++) {
        *--p = (char)('0' + us % 10);
        us /= 10;
    }
    *--p = '.';
    p = tg_u64_digits_before(us, p);
    put_key(l, key);
    put(l, p, (size_t)(end - p));
}

static void write_all(const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere to report a failing log */
        }
        off += (size_t)w;
    }
}

void tg_log_batch_start(void)
{
    if (batch == NULL) {
        batch = malloc(BATCH_MAX);
        batch_len = 0;
    }
}

void tg_log_flush(void)
{
    if (batch_len > 0) {
        write_all(batch, batch_len);
        batch_len = 0;
    }
}

void tg_log_batch_stop(void)
{
    tg_log_flush();
    TG_FREE(batch);
}

void tg_logline_end(struct tg_logline *l)
{
    if (l->skip) {
        return;
    }
    if (l->truncated) {
        /* Keep the line valid JSON: the fields written so far, then a marker. */
        l->len = l->len < sizeof(l->buf) - 24 ? l->len : sizeof(l->buf) - 24;
        put(l, ",\"truncated\":true", 17);
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    if (batch == NULL) {
        write_all(l->buf, l->len);
        return;
    }
    if (batch_len + l->len > BATCH_MAX) {
        tg_log_flush();
    }
    memcpy(batch + batch_len, l->buf, l->len);
    batch_len += l->len;
}

void tg_log(enum tg_log_level lvl, const struct tg_req *req, const char *event, const char *fmt,
            ...)
{
    struct tg_logline l;
    char msg[1024];
    va_list ap;

    tg_logline_begin(&l, lvl, req, event);
    if (l.skip) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_logline_str(&l, "msg", msg);
    tg_logline_end(&l);
}
