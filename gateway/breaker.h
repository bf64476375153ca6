#ifndef TG_GATEWAY_BREAKER_H
#define TG_GATEWAY_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The per-upstream breaker: Google SRE client-side adaptive throttling (the SRE book, "Handling
 * Overload"), as go-zero and Envoy's admission control do it. Over a sliding window it counts
 * the calls sent and the calls the upstream accepted, and refuses a new call with probability
 *     max(0, (requests - min_requests - k * accepts) / (requests + 1))
 * so it starts to throttle when fewer than 1/k of the calls succeed, and throttles harder the
 * worse it gets. Refused calls are not counted: while the upstream is down the few calls that
 * still go are probes, and one call a second always goes (the half-open probe), so recovery
 * is seen within seconds. Lock-free: every worker updates it with atomics. */

#define TG_BREAKER_BUCKETS  40       /* the window is made of this many slices */
#define TG_BREAKER_PROBE_US 1000000u /* a call goes through at least this often */

struct tg_breaker_conf;

/* Each bucket packs its slice number and two counts in one word, so that moving a bucket to a
 * new slice and counting in it is one compare-and-swap: slice (24 bits), requests and accepts
 * (20 bits each). Zeroed storage is an empty breaker. */
struct tg_breaker {
    _Atomic uint64_t buckets[TG_BREAKER_BUCKETS];
    _Atomic uint64_t last_pass_us; /* when a call was last let through while throttling */
};

/* Requests and accepts counted in the window ending at now (microseconds, monotonic). */
void tg_breaker_counts(const struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                       uint32_t *requests, uint32_t *accepts);

/* The probability of refusing a call now, 0 when it does not throttle (or c->on is false). */
double tg_breaker_ratio(const struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now);

/* Whether a call may go now. r01 is a uniform random number in [0, 1). Returns true at once
 * while the ratio is 0; while throttling, lets one call a second through (the probe) and
 * others with probability 1 - ratio. Any thread. */
bool tg_breaker_allow(struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                      double r01);

/* Counts a call that went out: accepted when the upstream answered it (anything but a 5xx or
 * a 429), not when it failed, timed out or refused it. Any thread. */
void tg_breaker_record(struct tg_breaker *b, const struct tg_breaker_conf *c, uint64_t now,
                       bool accepted);

#endif
