#include "gateway/breaker.h"

#include "gateway/conf.h"

#define SLICE_BITS 24
#define COUNT_BITS 20
#define SLICE_MASK ((UINT64_C(1) << SLICE_BITS) - 1)
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)

static uint64_t slice_us(const struct tg_breaker_conf *c)
{
    uint64_t us = (uint64_t)c->window_ms * 1000u / TG_BREAKER_BUCKETS;

    return us > 0 ? us : 1;
}

static uint64_t pack(uint64_t slice, uint64_t requests, uint64_t accepts)
{
    return (slice & SLICE_MASK) << (2 * COUNT_BITS) | (requests & COUNT_MASK) << COUNT_BITS |
           (accepts & COUNT_MASK);
}

void tg_breaker_counts(const struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                       uint32_t *requests, uint32_t *accepts)
{
    uint64_t cur = now / slice_us(c);
    uint32_t r = 0, a = 0;

    for (size_t i = 0; i < TG_BREAKER_BUCKETS; i++) {
        uint64_t v = atomic_load_explicit(&b->buckets[i], memory_order_relaxed);
        /* a bucket counts while its slice is one of the window's: 0..BUCKETS-1 slices ago */
        uint64_t age = (cur - (v >> (2 * COUNT_BITS))) & SLICE_MASK;
        if (v != 0 && age < TG_BREAKER_BUCKETS) {
            r += (uint32_t)(v >> COUNT_BITS & COUNT_MASK);
            a += (uint32_t)(v & COUNT_MASK);
        }
    }
    *requests = r;
    *accepts = a;
}

double tg_breaker_ratio(const struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now)
{
    uint32_t requests, accepts;
    double ratio;

    if (!c->on) {
        return 0.0;
    }
    tg_breaker_counts(b, c, now, &requests, &accepts);
    ratio = ((double)requests - (double)c->min_requests - c->k * (double)accepts) /
            ((double)requests + 1.0);
    return ratio > 0.0 ? ratio : 0.0;
}

bool tg_breaker_allow(struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                      double r01)
{
    double ratio = tg_breaker_ratio(b, c, now);
    uint64_t last;

    if (ratio <= 0.0) {
        return true;
    }
    last = atomic_load_explicit(&b->last_pass_us, memory_order_relaxed);
    /* The probe: whoever swaps the time first goes, however high the ratio. */
    if (now - last >= TG_BREAKER_PROBE_US &&
        atomic_compare_exchange_strong_explicit(&b->last_pass_us, &last, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
        return true;
    }
    if (r01 < ratio) {
        return false;
    }
    atomic_store_explicit(&b->last_pass_us, now, memory_order_relaxed);
    return true;
}

void tg_breaker_record(struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                       bool accepted)
{
    uint64_t cur = now / slice_us(c);
    _Atomic uint64_t *p = &b->buckets[cur % TG_BREAKER_BUCKETS];
    uint64_t v = atomic_load_explicit(p, memory_order_relaxed);
    uint64_t next;

    if (!c->on) {
        return;
    }
    do {
        uint64_t r = 0, a = 0;
        if (v != 0 && (v >> (2 * COUNT_BITS)) == (cur & SLICE_MASK)) {
            r = v >> COUNT_BITS & COUNT_MASK;
            a = v & COUNT_MASK;
        }
        /* saturate rather than wrap: a million calls in one slice is already a verdict */
        r += r < COUNT_MASK;
        a += accepted && a < COUNT_MASK;
        next = pack(cur, r, a);
    } while (!atomic_compare_exchange_weak_explicit(p, &v, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}
