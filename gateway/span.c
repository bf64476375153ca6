#include "gateway/span.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tg_span_ring *tg_span_ring_new(size_t cap, int wake_fd, size_t wake_at)
{
    size_t n = 16;
    struct tg_span_ring *r;

    while (n < cap) {
        n *= 2;
    }
    r = calloc(1, sizeof(*r) + n * sizeof(r->slots[0]));
    if (r == NULL) {
        return NULL;
    }
    r->cap = n;
    r->wake_fd = wake_fd;
    r->wake_at = wake_at > 0 ? wake_at : 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return r;
}

struct tg_span *tg_span_ring_reserve(struct tg_span_ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    struct tg_span *s;

    if (h - t >= r->cap) {
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return NULL;
    }
    s = &r->slots[h & (r->cap - 1)];
    memset(s, 0, sizeof(*s));
    return s;
}

void tg_span_ring_commit(struct tg_span_ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed) + 1;
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

    /* Release: the exporter that sees the new head sees the slot's bytes. */
    atomic_store_explicit(&r->head, h, memory_order_release);
    /* The first span starts the exporter's batch clock; a full share sends the batch now. */
    if ((h - t == 1 || h - t == r->wake_at) && r->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(r->wake_fd, &one, sizeof(one)); /* eventfd: never blocks */
        (void)w;
    }
}

size_t tg_span_ring_count(const struct tg_span_ring *r)
{
    size_t h = atomic_load_explicit(&((struct tg_span_ring *)r)->head, memory_order_acquire);
    size_t t = atomic_load_explicit(&((struct tg_span_ring *)r)->tail, memory_order_relaxed);

    return h - t;
}

size_t tg_span_ring_pop(struct tg_span_ring *r, struct tg_span *out, size_t max)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t n = h - t < max ? h - t : max;

    for (size_t i = 0; i < n; i++) {
        out[i] = r->slots[(t + i) & (r->cap - 1)];
    }
    /* Release: the worker reuses the slots only after the copies above. */
    atomic_store_explicit(&r->tail, t + n, memory_order_release);
    return n;
}

uint64_t tg_span_unix_ns(uint64_t mono_us)
{
    struct timespec real, mono;
    uint64_t real_ns, mono_ns;

    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    real_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec;
    mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
    return real_ns - (mono_ns - mono_us * 1000u);
}

void tg_span_copy(char *dst, size_t cap, const char *s)
{
    size_t n;

    if (s == NULL) {
        dst[0] = '\0';
        return;
    }
    n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}
