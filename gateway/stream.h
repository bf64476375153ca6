#ifndef TG_GATEWAY_STREAM_H
#define TG_GATEWAY_STREAM_H

/* A body that passes through the gateway without being held whole: a bounded pipe between the
 * side that receives it (the producer) and the side that sends it on (the consumer). A ring of
 * fixed size between them is all the memory it takes, whatever the body's size. Flow control
 * works both ways:
 *   - a producer refused room waits; tg_stream_take runs its wake once there is room again;
 *   - a consumer that found nothing says so (tg_stream_wait); tg_stream_put, the end or a
 *     failure runs its wake.
 * The proxy streams answers from libcurl's write callback to libmicrohttpd's content reader,
 * and request bodies from libmicrohttpd's upload data to libcurl's read callback. Both sides
 * run on one worker's loop thread. A wake runs inside the other side's call, so it only
 * schedules work (resume a connection, unpause a transfer) and never calls back into the
 * stream. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

/* A side's wake (arg is what it registered). */
typedef void tg_stream_wake_fn(void *arg);

struct tg_stream {
    char *ring; /* owned, cap bytes */
    size_t cap;
    size_t head;      /* offset of the oldest byte held */
    size_t len;       /* bytes held */
    int64_t length;   /* the whole body's length when known, else -1 */
    uint64_t put_n;   /* bytes put so far */
    uint64_t taken_n; /* bytes taken so far */
    int err;          /* TG_OK, or why a side stopped the stream (tg_stream_stop) */
    bool ended;       /* the producer has put its last byte */
    bool producer_waits;
    size_t want; /* room the waiting producer needs */
    bool consumer_waits;
    tg_stream_wake_fn *wake_producer;
    void *producer_arg;
    tg_stream_wake_fn *wake_consumer;
    void *consumer_arg;
};

/* Sets up s (caller storage) with a ring of cap bytes (at least 1) for a body of length bytes
 * (-1: unknown). TG_OK or TG_ENOMEM. */
int tg_stream_init(struct tg_stream *s, size_t cap, int64_t length) TG_MUST_CHECK;

/* Frees the ring. Idempotent; a zeroed stream is fine. */
void tg_stream_cleanup(struct tg_stream *s);

/* Who to wake when the producer may put again (fn NULL: nobody). */
void tg_stream_on_room(struct tg_stream *s, tg_stream_wake_fn *fn, void *arg);

/* Who to wake when the consumer may take again: bytes, the end or a failure (fn NULL: nobody). */
void tg_stream_on_data(struct tg_stream *s, tg_stream_wake_fn *fn, void *arg);

/* Bytes the ring can take now. */
size_t tg_stream_room(const struct tg_stream *s);

/* Producer: puts all n bytes of p, or none when they do not fit (libcurl's write callback
 * takes a chunk whole or pauses). false: nothing was put; unless the stream was stopped, the
 * producer now waits until n bytes fit. */
bool tg_stream_put_all(struct tg_stream *s, const char *p, size_t n);

/* Producer: puts as much of p as fits and returns how much. When that is less than n and the
 * stream was not stopped, the producer waits until half the ring (or the rest, when smaller)
 * is free. 0 on a stopped stream. */
size_t tg_stream_put(struct tg_stream *s, const char *p, size_t n);

/* Producer: the body is complete. */
void tg_stream_end(struct tg_stream *s);

/* Consumer: copies up to max bytes into out and returns how many; wakes a waiting producer
 * when its room is there. A body of known length keeps its last byte until tg_stream_end, so
 * the consumer can only finish after the producer has (its end says the body arrived whole).
 * 0: nothing to take now; see tg_stream_is_done and tg_stream_err. */
size_t tg_stream_take(struct tg_stream *s, char *out, size_t max);

/* Consumer: nothing to take; wake me on the next bytes, the end or a failure. */
void tg_stream_wait(struct tg_stream *s);

/* Either side gives up with err (not TG_OK): nothing more will be put or taken. Wakes both
 * sides when they wait. The first err stays. */
void tg_stream_stop(struct tg_stream *s, int err);

/* Why the stream stopped, TG_OK while it has not. */
int tg_stream_err(const struct tg_stream *s);

/* Consumer: the producer ended, everything was taken, and a known length was met. */
bool tg_stream_is_done(const struct tg_stream *s);

#endif
