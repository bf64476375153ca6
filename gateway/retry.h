#ifndef TG_GATEWAY_RETRY_H
#define TG_GATEWAY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/conf_upstream.h"
#include "gateway/pool.h"

/* Safe retries: whether a failed attempt may be made again, how long to wait first, and the
 * retry budget that keeps retries from doubling the load on a dying upstream. The rules, in the
 * order they apply:
 *   - a call makes at most max_attempts attempts, all inside the request's deadline;
 *   - a request that never left the gateway (no connection: refused, unreachable, connect
 *     timeout, TLS handshake) may go again whatever its method, when "connect-failure" is in
 *     retry_on;
 *   - anything else is retried only for the idempotent methods GET, HEAD, OPTIONS, PUT and
 *     DELETE, and only for the failures retry_on names ("reset" before any answer byte,
 *     "timeout" of the attempt, upstream statuses): a POST or a PATCH that was sent is never
 *     sent again;
 *   - at most max(min, percent of the calls in flight) retries run at once per upstream. */

/* retry_on bits besides statuses */
#define TG_RETRY_CONNECT 1u /* "connect-failure" */
#define TG_RETRY_RESET   2u /* "reset": closed or reset before any answer byte */
#define TG_RETRY_TIMEOUT 4u /* "timeout": the attempt's own time (per_try_timeout_ms) ran out */

#define TG_RETRY_ATTEMPTS_MAX 10
#define TG_RETRY_BASE_MS      25  /* full jitter backoff: first retry waits up to this */
#define TG_RETRY_CAP_MS       250 /* no retry waits longer */

/* A route's retry settings (its "retry" key; routes/conf_check.c reads it). */
struct tg_retry_policy {
    unsigned max_attempts;         /* 1..TG_RETRY_ATTEMPTS_MAX, the first attempt included */
    unsigned per_try_timeout_ms;   /* cap on each attempt, 0 = none (the call's cap) */
    unsigned on;                   /* TG_RETRY_* */
    struct tg_status_set statuses; /* upstream answers that are retried (idempotent only) */
};

/* How one failed attempt went, as the rules read it. */
struct tg_attempt_result {
    enum tg_outcome outcome;
    int status;    /* the upstream's status, 0 without an answer */
    bool answered; /* a byte of the answer arrived */
};

/* The defaults: 2 attempts, no per-try cap, retry_on connect-failure, reset, 502, 503, 504. */
void tg_retry_policy_default(struct tg_retry_policy *p);

/* Whether an attempt numbered attempt (1 = the first) of a method call that ended with r may
 * be followed by another under p. Pure: no budget, no deadline. */
bool tg_retry_allowed(const struct tg_retry_policy *p, const char *method, unsigned attempt,
                      const struct tg_attempt_result *r);

/* RFC 9110's idempotent methods the rules retry: GET, HEAD, OPTIONS, PUT, DELETE. */
bool tg_retry_idempotent(const char *method);

/* Full jitter: a wait in [0, min(CAP, BASE * 2^(retry-1))] ms before retry number retry (1 = the
 * second attempt); rnd gives the draw. */
unsigned tg_retry_backoff_ms(unsigned retry, uint64_t rnd);

/* Takes a place in u's retry budget: TG_OK, or TG_EOVERLOAD (counted in retries_refused) when
 * max(min, percent of u's calls in flight) retries already run. Any thread. */
int tg_retry_budget_take(const struct tg_upstream *u);

/* Gives the place back. */
void tg_retry_budget_give(const struct tg_upstream *u);

#endif
