#ifndef TG_GATEWAY_POOL_H
#define TG_GATEWAY_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/breaker.h"
#include "gateway/list.h"
#include "gateway/stats.h"

/* Upstream pools: the state of upstreams and targets that every worker shares and that a
 * reload keeps (the conf, gateway/conf_upstream.h, only says how they behave). Which target a
 * call goes to (least request with two random choices, or round robin, by weight), whether a
 * call may go at all (the breaker, the bulkhead), and what the answers say about a target
 * (passive outlier detection: ejection).
 *
 * Ownership: the conf's upstreams and targets each hold one reference to their state object,
 * found by name (upstream) or by upstream name and url (target) in a process-wide registry, so
 * a new conf naming the same ones gets the same objects with their health, ejections, breaker
 * and counters. A request holds its conf, so the state it reads lives as long as the request;
 * a state object is freed when the last conf naming it is. Nothing on the request path locks:
 * the registry's mutex is taken only when a conf is loaded or freed. */

struct tg_upstream;

/* What one attempt says about its target, as ejection, the breaker and the retry rules see it. */
enum tg_outcome {
    TG_OUT_OK = 0,           /* an answer that is not a failure: every status but 5xx and 429 */
    TG_OUT_BACKPRESSURE = 1, /* 429: the target sheds load; not a failure of the target */
    TG_OUT_STATUS = 2,       /* a 5xx answer */
    TG_OUT_CONNECT = 3,      /* no connection (refused, unreachable, timeout, TLS): nothing sent */
    TG_OUT_RESET = 4,        /* reset or closed before the answer was complete */
    TG_OUT_TIMEOUT = 5,      /* the attempt's time ran out after the request went out */
    TG_OUT_NONE = 6,         /* nothing about the target: cancelled, answer too large, local */
};

/* The shared state of one target. */
struct tg_target_state {
    char *upstream; /* owned: the upstream's name */
    char *url;      /* owned: the target's origin */
    atomic_uint refs;
    struct tg_list link; /* in the registry */

    atomic_uint active;                 /* attempts in flight (least request) */
    atomic_uint consecutive;            /* failures in a row */
    _Atomic uint64_t ejected_until_us;  /* 0 while in use */
    atomic_uint ejections;              /* the multiplier of the next ejection's length */
    _Atomic uint64_t back_since_us;     /* when its last ejection ended */
    atomic_bool down;                   /* active health checks say so */
    unsigned check_passes, check_fails; /* in a row; the health thread's alone */
    struct tg_target_stats stats;
};

/* The shared state of one upstream. */
struct tg_pool {
    char *name; /* owned */
    atomic_uint refs;
    struct tg_list link; /* in the registry */

    atomic_uint in_flight; /* calls in flight, all workers (the bulkhead) */
    atomic_uint retrying;  /* retries waiting or in flight (the retry budget) */
    atomic_uint rr;        /* round robin position */
    atomic_bool unstable;  /* what the last upstream.unstable / upstream.recovered line said */
    _Atomic uint64_t refused_us; /* the last call refused for the breaker or for no target */
    struct tg_breaker breaker;
    struct tg_pool_stats stats;
};

/* ---- registry: any thread ------------------------------------------------------------- */

/* The state of the upstream called name, made on first use; a new reference, or NULL when out
 * of memory. */
struct tg_pool *tg_pool_get(const char *name);

/* Drops a reference; the last one frees it. NULL is a no-op. */
void tg_pool_put(struct tg_pool *p);

/* The state of target url of upstream, made on first use; a new reference, or NULL. */
struct tg_target_state *tg_target_state_get(const char *upstream, const char *url);

/* Drops a reference; the last one frees it. NULL is a no-op. */
void tg_target_state_put(struct tg_target_state *t);

/* ---- calls: any thread, no lock --------------------------------------------------------- */

/* The bulkhead: takes a place among u's calls in flight. TG_OK, or TG_EOVERLOAD (counted) when
 * u->max_in_flight calls already run, all workers together. */
int tg_pool_enter(const struct tg_upstream *u);

/* Gives the place back. */
void tg_pool_leave(const struct tg_upstream *u);

/* Whether target i of u may get calls at now: not ejected, not down. An ejection that has run
 * out ends here (upstream.returned is logged by whoever notices first). */
bool tg_pool_usable(const struct tg_upstream *u, size_t i, uint64_t now);

/* How many targets of u are usable at now. */
size_t tg_pool_usable_count(const struct tg_upstream *u, uint64_t now);

/* Where the next attempt of a call to u goes, or whether it may not go: the breaker first
 * (r01 a uniform random number in [0,1), for it), then a target among the usable ones by u's
 * balance, avoiding those whose bit is set in tried when another is usable. When fewer than
 * half the targets are usable, ejections are ignored (panic: a systemic failure must not empty
 * the pool); targets that health checks found down never get calls. Returns TG_OK with *idx
 * set, or TG_EUNSTABLE (counted, *why static text) when the breaker refuses or no target is
 * usable. rnd gives the random choices. */
int tg_pool_admit(const struct tg_upstream *u, uint64_t tried, uint64_t now, uint64_t rnd,
                  double r01, size_t *idx, const char **why);

/* An attempt to target i starts: counted in its calls in flight. */
void tg_pool_begin(const struct tg_upstream *u, size_t i);

/* The attempt to target i ended with o at now: the target's calls in flight, its failures in
 * a row and its ejection (u->outlier), the breaker's window, the counters. A success marks an
 * unstable upstream recovered once the breaker no longer throttles and no call was refused for
 * a second. */
void tg_pool_end(const struct tg_upstream *u, size_t i, enum tg_outcome o, uint64_t now);

/* Seconds a client should wait before trying u again: until the first ejection ends (1..300)
 * when no target is usable, else 1. */
unsigned tg_pool_retry_after_s(const struct tg_upstream *u, uint64_t now);

/* Says the upstream is unstable (reason: static text) or recovered, once per change: logs
 * upstream.unstable or upstream.recovered and flips the gauge. */
void tg_pool_set_unstable(const struct tg_upstream *u, bool unstable, const char *reason);

/* Ends the ejection of target i now, if it is ejected (an active health check passed). */
void tg_pool_uneject(const struct tg_upstream *u, size_t i, uint64_t now);

#endif
