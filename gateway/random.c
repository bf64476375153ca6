/* The gateway's random bytes: a per-thread ChaCha20 generator keyed from the system once. */
#include "gateway/random.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <uuid/uuid.h>

#define RNG_BLOCKS     4 /* ChaCha20 blocks computed per refill */
#define RNG_BLOCK_SIZE 64
#define RNG_KEY_SIZE   32

static uint32_t rotl32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void quarter_round(uint32_t *x, int a, int b, int c, int d)
{
    x[a] += x[b];
    x[d] = rotl32(x[d] ^ x[a], 16);
    x[c] += x[d];
    x[b] = rotl32(x[b] ^ x[c], 12);
    x[a] += x[b];
    x[d] = rotl32(x[d] ^ x[a], 8);
    x[c] += x[d];
    x[b] = rotl32(x[b] ^ x[c], 7);
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void tg_random_chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                              uint8_t out[64])
{
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574}; /* "expand 32-byte k" */
    uint32_t x[16];

    for (size_t i = 0; i < 8; i++) {
        in[4 + i] = load_le32(key + 4 * i);
    }
    in[12] = counter;
    for (size_t i = 0; i < 3; i++) {
        in[13 + i] = load_le32(nonce + 4 * i);
    }
    memcpy(x, in, sizeof(x));
    for (int round = 0; round < 10; round++) { /* 10 double rounds = 20 rounds */
        quarter_round(x, 0, 4, 8, 12);
        quarter_round(x, 1, 5, 9, 13);
        quarter_round(x, 2, 6, 10, 14);
        quarter_round(x, 3, 7, 11, 15);
        quarter_round(x, 0, 5, 10, 15);
        quarter_round(x, 1, 6, 11, 12);
        quarter_round(x, 2, 7, 8, 13);
        quarter_round(x, 3, 4, 9, 14);
    }
    for (size_t i = 0; i < 16; i++) {
        store_le32(out + 4 * i, x[i] + in[i]);
    }
}

/* One thread's generator. The buffer's first RNG_KEY_SIZE bytes become the next key at each
 * refill, so the bytes served are never the ones that key the following output. */
struct rng {
    uint8_t key[RNG_KEY_SIZE];
    uint8_t buf[RNG_BLOCKS * RNG_BLOCK_SIZE];
    size_t avail;           /* unserved bytes at the end of buf */
    unsigned long fork_gen; /* value of rng_fork_gen when the key was drawn */
    bool seeded;
};

static _Thread_local struct rng rng_tls;
/* Bumped in a forked child, whose only thread carries a copy of the parent's state: without a
 * new key it would repeat the ids the parent is about to generate. */
static atomic_ulong rng_fork_gen;
static pthread_once_t rng_atfork_once = PTHREAD_ONCE_INIT;

static void rng_on_fork_child(void)
{
    atomic_fetch_add_explicit(&rng_fork_gen, 1, memory_order_relaxed);
}

static void rng_register_atfork(void)
{
    /* Only fails with ENOMEM; then a forked child that never execs would repeat the parent's
     * stream, which the gateway (threads only, fork+exec in tests) never does. */
    (void)pthread_atfork(NULL, NULL, rng_on_fork_child);
}

static void rng_refill(struct rng *r)
{
    static const uint8_t nonce[12]; /* zero: every key is fresh and used for one refill only */

    for (uint32_t i = 0; i < RNG_BLOCKS; i++) {
        tg_random_chacha20_block(r->key, i, nonce, r->buf + (size_t)i * RNG_BLOCK_SIZE);
    }
    memcpy(r->key, r->buf, RNG_KEY_SIZE);
    memset(r->buf, 0, RNG_KEY_SIZE);
    r->avail = sizeof(r->buf) - RNG_KEY_SIZE;
}

/* Draws a fresh key: two random UUIDs give 244 random bits (6 bits of each are fixed version
 * and variant), ample for a 256-bit key. libuuid reads them from getrandom(). */
static void rng_seed(struct rng *r, unsigned long gen)
{
    uuid_t u;

    (void)pthread_once(&rng_atfork_once, rng_register_atfork);
    uuid_generate_random(u);
    memcpy(r->key, u, sizeof(u));
    uuid_generate_random(u);
    memcpy(r->key + sizeof(u), u, sizeof(u));
    explicit_bzero(u, sizeof(u));
    r->avail = 0;
    r->fork_gen = gen;
    r->seeded = true;
}

void tg_random_bytes(uint8_t *buf, size_t n)
{
    struct rng *r = &rng_tls;
    unsigned long gen = atomic_load_explicit(&rng_fork_gen, memory_order_relaxed);

    if (!r->seeded || r->fork_gen != gen) {
        rng_seed(r, gen);
    }
    while (n > 0) {
        if (r->avail == 0) {
            rng_refill(r);
        }
        size_t take = n < r->avail ? n : r->avail;
        uint8_t *src = r->buf + sizeof(r->buf) - r->avail;

        memcpy(buf, src, take);
        memset(src, 0, take); /* served bytes must not stay readable in memory */
        buf += take;
        n -= take;
        r->avail -= take;
    }
}

uint64_t tg_random_u64(void)
{
    uint64_t v;

    tg_random_bytes((uint8_t *)&v, sizeof(v));
    return v;
}

double tg_random_unit(void)
{
    return (double)(tg_random_u64() >> 11) * 0x1.0p-53;
}
