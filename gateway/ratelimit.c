/* Lock-free per-client token buckets: open addressing over atomic slots. */
#include "gateway/ratelimit.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "gateway/random.h"
#include "gateway/req.h"

#define PROBES     8
#define UNIT       1024u              /* a token, in bucket units */
#define TOKEN_BITS 24                 /* bucket units: up to 16383 tokens */
#define TIME_MASK  ((1ull << 40) - 1) /* milliseconds: 34 years */

struct slot {
    _Atomic uint64_t key;   /* hash of the client, 0 = free */
    _Atomic uint64_t state; /* ((ms + 1) << TOKEN_BITS) | units; 0 = never used */
};

struct tg_ratelimit {
    uint64_t seed;     /* per table: crafted keys cannot aim at one slot */
    uint64_t start_us; /* time 0 of the packed milliseconds */
    uint64_t burst;    /* in units */
    double per_ms;     /* units refilled per millisecond */
    size_t mask;
    struct slot slots[];
};

struct tg_ratelimit *tg_ratelimit_new(unsigned per_second, unsigned burst, unsigned clients)
{
    size_t n = 64;
    struct tg_ratelimit *rl;

    while (n < (size_t)clients * 2 && n < ((size_t)1 << 24)) {
        n *= 2;
    }
    rl = calloc(1, sizeof(*rl) + n * sizeof(rl->slots[0]));
    if (rl == NULL) {
        return NULL;
    }
    tg_random_bytes((uint8_t *)&rl->seed, sizeof(rl->seed));
    rl->start_us = tg_now_us();
    rl->burst = (uint64_t)burst * UNIT;
    rl->per_ms = (double)per_second * UNIT / 1000.0;
    rl->mask = n - 1;
    for (size_t i = 0; i < n; i++) {
        atomic_init(&rl->slots[i].key, 0);
        atomic_init(&rl->slots[i].state, 0);
    }
    return rl;
}

void tg_ratelimit_free(struct tg_ratelimit *rl)
{
    free(rl);
}

/* FNV-1a over the seed and the key, never 0 (0 marks a free slot). */
static uint64_t hash(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ seed;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

/* The units in a bucket of state at now_ms, refilled. */
static uint64_t level(const struct tg_ratelimit *rl, uint64_t state, uint64_t now_ms)
{
    uint64_t t = (state >> TOKEN_BITS) - 1; /* stored one up, so that 0 means unused */
    uint64_t units = state & ((1ull << TOKEN_BITS) - 1);
    double refill;

    if (state == 0) {
        return rl->burst;
    }
    refill = (double)(now_ms > t ? now_ms - t : 0) * rl->per_ms;
    return refill >= (double)(rl->burst - units) ? rl->burst : units + (uint64_t)refill;
}

/* The slot of h: its own, a free one claimed, or a full (idle) one taken over; NULL if none
 * of the PROBES slots from its home will do. */
static struct slot *slot_of(struct tg_ratelimit *rl, uint64_t h, uint64_t now_ms)
{
    for (size_t i = 0; i < PROBES; i++) {
        struct slot *s = &rl->slots[(h + i) & rl->mask];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == h) {
            return s;
        }
        if (k == 0 && atomic_compare_exchange_strong(&s->key, &k, h)) {
            return s;
        }
        if (k == h) {
            return s; /* another worker claimed it for the same client */
        }
    }
    for (size_t i = 0; i < PROBES; i++) {
        struct slot *s = &rl->slots[(h + i) & rl->mask];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (level(rl, st, now_ms) == rl->burst && atomic_compare_exchange_strong(&s->key, &k, h)) {
            atomic_store_explicit(&s->state, 0, memory_order_relaxed);
            return s;
        }
    }
    return NULL;
}

bool tg_ratelimit_take(struct tg_ratelimit *rl, const char *key, size_t len, uint64_t now_us,
                       unsigned *retry_after_s)
{
    uint64_t now_ms;
    struct slot *s;
    uint64_t old;

    now_ms = ((now_us > rl->start_us ? now_us - rl->start_us : 0) / 1000u) & TIME_MASK;
    s = slot_of(rl, hash(rl->seed, key, len), now_ms);
    if (s == NULL) {
        return true;
    }
    old = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        uint64_t units = level(rl, old, now_ms);
        if (units < UNIT) {
            double ms = (double)(UNIT - units) / rl->per_ms;
            *retry_after_s = (unsigned)(ms / 1000.0) + 1;
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&s->state, &old,
                                                  ((now_ms + 1) << TOKEN_BITS) | (units - UNIT),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            return true;
        }
    }
}
