#ifndef TG_GATEWAY_RATELIMIT_H
#define TG_GATEWAY_RATELIMIT_H

/* Per-client token buckets shared by every worker, without a lock: a fixed table of slots,
 * each a 64-bit client key and a 64-bit bucket state (last refill time and tokens) changed
 * with compare-and-swap. A client's bucket holds up to burst tokens, refills at per_second,
 * and a request takes one. When the table is full, a bucket that has refilled completely (its
 * client was idle) is given to a new client; a client finding no slot at all is let through
 * rather than made to share a stranger's bucket. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_RATELIMIT_BURST_MAX 10000
#define TG_RATELIMIT_RATE_MAX  100000

struct tg_ratelimit;

/* A table for about clients clients (rounded up to a power of two, twice over), refilling
 * per_second tokens (1..TG_RATELIMIT_RATE_MAX) up to burst (1..TG_RATELIMIT_BURST_MAX). NULL
 * when out of memory. */
struct tg_ratelimit *tg_ratelimit_new(unsigned per_second, unsigned burst, unsigned clients);

/* Frees the table (NULL is a no-op). No thread may use it any more. */
void tg_ratelimit_free(struct tg_ratelimit *rl);

/* Takes a token from the bucket of client key (len bytes) at now_us (CLOCK_MONOTONIC).
 * Returns true when one was there; false when the bucket is empty, with *retry_after_s the
 * whole seconds (at least 1) until it holds a token again. Any thread. */
bool tg_ratelimit_take(struct tg_ratelimit *rl, const char *key, size_t len, uint64_t now_us,
                       unsigned *retry_after_s);

#endif
