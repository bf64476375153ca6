#include "tests/support/stub/stub.h"

/* tg-stub: growable strings, JSON text, the clock and the body hash. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t fnv1a_more(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    }
    return h;
}

uint64_t fnv1a(const char *p, size_t n)
{
    return fnv1a_more(FNV1A_INIT, p, n);
}

size_t pace_step(long rate, size_t max)
{
    size_t step = rate > 0 ? (size_t)rate / 16 : max;

    step = step == 0 ? 1 : step;
    return step < max ? step : max;
}

void pace(uint64_t t0_us, uint64_t bytes, long rate)
{
    uint64_t due, now;

    if (rate <= 0) {
        return;
    }
    due = t0_us + bytes * 1000000u / (uint64_t)rate;
    /* In steps, so that a stopping stub is not held up by a slow pace. */
    while ((now = now_us()) < due && !atomic_load(&stub.stopping)) {
        uint64_t step = due - now < 100000u ? due - now : 100000u;
        struct timespec ts = {0, (long)step * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Makes room for n more bytes and a NUL; false (and s->oom) when memory ran out. */
bool sbuf_reserve(struct sbuf *s, size_t n)
{
    size_t cap = s->cap ? s->cap : 256;
    char *np;

    if (s->oom || s->len + n + 1 <= s->cap) {
        return !s->oom;
    }
    while (cap < s->len + n + 1 && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    np = cap >= s->len + n + 1 ? realloc(s->p, cap) : NULL;
    if (np == NULL) {
        s->oom = true;
        return false;
    }
    s->p = np;
    s->cap = cap;
    return true;
}

void sbuf_add(struct sbuf *s, const char *p, size_t n)
{
    if (n == 0 || !sbuf_reserve(s, n)) {
        return;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

void sbuf_str(struct sbuf *s, const char *str)
{
    sbuf_add(s, str, strlen(str));
}

void sbuf_addf(struct sbuf *s, const char *fmt, ...)
{
    char tmp[256]; /* every caller formats numbers and short names */
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        sbuf_add(s, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes are not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t need = 0;
    uint32_t cp;

    if (p[0] < 0x80) {
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        need = 2;
    } else if ((p[0] & 0xF0) == 0xE0) {
        need = 3;
    } else if ((p[0] & 0xF8) == 0xF0) {
        need = 4;
    }
    if (need == 0 || need > n) {
        return 0;
    }
    cp = p[0] & (0x7Fu >> need);
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return need;
}

/* Appends p[0..n) as a JSON string. Bytes that are not valid UTF-8 become \u00XX so the line
 * stays valid JSON whatever the peer sent. */
void sbuf_json(struct sbuf *s, const char *p, size_t n)
{
    sbuf_add(s, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        size_t k = utf8_len((const unsigned char *)p + i, n - i);
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            sbuf_add(s, esc, 2);
            k = 1;
        } else if (ch < 0x20 || ch == 0x7F || k == 0) {
            sbuf_addf(s, "\\u%04x", ch);
            k = 1;
        } else {
            sbuf_add(s, p + i, k);
        }
        i += k;
    }
    sbuf_add(s, "\"", 1);
}

void sbuf_json_headers(struct sbuf *s, const struct request *r)
{
    sbuf_str(s, "[");
    for (size_t i = 0; i < r->nhdrs; i++) {
        sbuf_str(s, i ? ",[" : "[");
        sbuf_json(s, r->hdrs[i].name, strlen(r->hdrs[i].name));
        sbuf_str(s, ",");
        sbuf_json(s, r->hdrs[i].value, strlen(r->hdrs[i].value));
        sbuf_str(s, "]");
    }
    sbuf_str(s, "]");
}
