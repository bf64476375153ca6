/* The bounded pipe of a streamed body: a ring, its two sides' waits and wakes. */
#include "gateway/stream.h"

#include <stdlib.h>
#include <string.h>

int tg_stream_init(struct tg_stream *s, size_t cap, int64_t length)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap > 0 ? cap : 1;
    s->length = length;
    s->ring = malloc(s->cap);
    return s->ring != NULL ? TG_OK : TG_ENOMEM;
}

void tg_stream_cleanup(struct tg_stream *s)
{
    TG_FREE(s->ring);
    s->len = 0;
    s->head = 0;
}

void tg_stream_on_room(struct tg_stream *s, tg_stream_wake_fn *fn, void *arg)
{
    s->wake_producer = fn;
    s->producer_arg = arg;
}

void tg_stream_on_data(struct tg_stream *s, tg_stream_wake_fn *fn, void *arg)
{
    s->wake_consumer = fn;
    s->consumer_arg = arg;
}

size_t tg_stream_room(const struct tg_stream *s)
{
    return s->cap - s->len;
}

/* The waits are cleared before the wake runs: a wake may make the other side wait again. */
static void wake_consumer(struct tg_stream *s)
{
    if (!s->consumer_waits) {
        return;
    }
    s->consumer_waits = false;
    if (s->wake_consumer != NULL) {
        s->wake_consumer(s->consumer_arg);
    }
}

static void wake_producer(struct tg_stream *s)
{
    if (!s->producer_waits) {
        return;
    }
    s->producer_waits = false;
    if (s->wake_producer != NULL) {
        s->wake_producer(s->producer_arg);
    }
}

/* Copies n bytes (n <= room) in at the ring's tail, in at most two pieces. */
static void copy_in(struct tg_stream *s, const char *p, size_t n)
{
    size_t tail = (s->head + s->len) % s->cap;
    size_t first = s->cap - tail < n ? s->cap - tail : n;

    memcpy(s->ring + tail, p, first);
    memcpy(s->ring, p + first, n - first);
    s->len += n;
    s->put_n += n;
}

bool tg_stream_put_all(struct tg_stream *s, const char *p, size_t n)
{
    if (s->err != TG_OK || s->ended) {
        return false;
    }
    if (n > tg_stream_room(s)) {
        s->producer_waits = true;
        s->want = n < s->cap ? n : s->cap;
        return false;
    }
    if (n > 0) {
        copy_in(s, p, n);
        wake_consumer(s);
    }
    return true;
}

size_t tg_stream_put(struct tg_stream *s, const char *p, size_t n)
{
    size_t k;

    if (s->err != TG_OK || s->ended) {
        return 0;
    }
    k = n < tg_stream_room(s) ? n : tg_stream_room(s);
    if (k < n) {
        /* Half the ring before it goes on: fewer, larger steps than one per freed byte. */
        size_t rest = n - k;
        s->producer_waits = true;
        s->want = rest < s->cap / 2 ? rest : s->cap / 2;
        if (s->want == 0) {
            s->want = 1;
        }
    }
    if (k > 0) {
        copy_in(s, p, k);
        wake_consumer(s);
    }
    return k;
}

void tg_stream_end(struct tg_stream *s)
{
    if (s->ended || s->err != TG_OK) {
        return;
    }
    if (s->length >= 0 && s->put_n != (uint64_t)s->length) {
        /* Its producer counts bytes against the length (libcurl, libmicrohttpd): a bug. */
        tg_stream_stop(s, TG_EINTERNAL);
        return;
    }
    s->ended = true;
    wake_consumer(s);
}

size_t tg_stream_take(struct tg_stream *s, char *out, size_t max)
{
    size_t n = s->len < max ? s->len : max;
    size_t first;

    if (s->err != TG_OK) {
        return 0;
    }
    if (!s->ended && s->length >= 0 && s->taken_n + n >= (uint64_t)s->length) {
        /* The last byte waits for the end. */
        n = (uint64_t)s->length > s->taken_n ? (size_t)((uint64_t)s->length - s->taken_n - 1) : 0;
        n = n < s->len ? n : s->len;
    }
    if (n == 0) {
        return 0;
    }
    first = s->cap - s->head < n ? s->cap - s->head : n;
    memcpy(out, s->ring + s->head, first);
    memcpy(out + first, s->ring, n - first);
    s->head = (s->head + n) % s->cap;
    s->len -= n;
    s->taken_n += n;
    if (s->producer_waits && tg_stream_room(s) >= s->want) {
        wake_producer(s);
    }
    return n;
}

void tg_stream_wait(struct tg_stream *s)
{
    s->consumer_waits = true;
}

void tg_stream_stop(struct tg_stream *s, int err)
{
    if (err == TG_OK || s->err != TG_OK) {
        return;
    }
    s->err = err;
    wake_producer(s);
    wake_consumer(s);
}

int tg_stream_err(const struct tg_stream *s)
{
    return s->err;
}

bool tg_stream_is_done(const struct tg_stream *s)
{
    return s->err == TG_OK && s->ended && s->len == 0;
}
