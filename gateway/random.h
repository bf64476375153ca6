#ifndef TG_GATEWAY_RANDOM_H
#define TG_GATEWAY_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf[0..n) with random bytes from this thread's ChaCha20 generator (a CSPRNG: trace ids
 * are echoed to clients, and a linear generator such as xoshiro would let one client predict
 * the ids of other requests). The key comes once per thread (and again in a forked child) from
 * libuuid's uuid_generate_random; after that no system call is made. Keys are replaced after
 * every 224 bytes served (fast key erasure), so a leaked state does not reveal past output. */
void tg_random_bytes(uint8_t *buf, size_t n);

/* A uniform random 64-bit number from tg_random_bytes (load balancing, backoff jitter). */
uint64_t tg_random_u64(void);

/* A uniform random number in [0, 1) with 53 bits (the breaker's probability). */
double tg_random_unit(void);

/* The ChaCha20 block function of RFC 8439 (section 2.3): 64 bytes of key stream for key,
 * block counter and nonce. Used by tg_random_bytes; public for its known-answer test. */
void tg_random_chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                              uint8_t out[64]);

#endif
