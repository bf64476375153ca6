/* Upstream pools: the registry of shared state, the bulkhead, and where a call goes (breaker,
 * usable targets, balance). What an answer does to its target (ejection) is in outlier.c. */
#include "gateway/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/log.h"

/* ---- registry ------------------------------------------------------------------------- */

/* Taken when a conf is loaded or freed, never on the request path. Every change of a reference
 * count happens under it, so a lookup can never revive an object being freed. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tg_list pools = {&pools, &pools};
static struct tg_list targets = {&targets, &targets};

struct tg_pool *tg_pool_get(const char *name)
{
    struct tg_pool *p = NULL;
    struct tg_list *pos, *nxt;

    pthread_mutex_lock(&registry_lock);
    TG_LIST_FOREACH_SAFE(pos, nxt, &pools)
    {
        struct tg_pool *q = TG_LIST_ENTRY(pos, struct tg_pool, link);
        if (strcmp(q->name, name) == 0) {
            p = q;
            atomic_fetch_add(&p->refs, 1);
            goto out;
        }
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = strdup(name)) == NULL) {
        free(p);
        p = NULL;
        goto out;
    }
    atomic_init(&p->refs, 1);
    tg_list_push(&pools, &p->link);
out:
    pthread_mutex_unlock(&registry_lock);
    return p;
}

void tg_pool_put(struct tg_pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        tg_list_remove(&p->link);
        free(p->name);
        free(p);
    }
    pthread_mutex_unlock(&registry_lock);
}

struct tg_target_state *tg_target_state_get(const char *upstream, const char *url)
{
    struct tg_target_state *t = NULL;
    struct tg_list *pos, *nxt;

    pthread_mutex_lock(&registry_lock);
    TG_LIST_FOREACH_SAFE(pos, nxt, &targets)
    {
        struct tg_target_state *q = TG_LIST_ENTRY(pos, struct tg_target_state, link);
        if (strcmp(q->upstream, upstream) == 0 && strcmp(q->url, url) == 0) {
            t = q;
            atomic_fetch_add(&t->refs, 1);
            goto out;
        }
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        goto out;
    }
    t->upstream = strdup(upstream);
    t->url = strdup(url);
    if (t->upstream == NULL || t->url == NULL) {
        free(t->upstream);
        free(t->url);
        TG_FREE(t);
        goto out;
    }
    atomic_init(&t->refs, 1);
    tg_list_push(&targets, &t->link);
out:
    pthread_mutex_unlock(&registry_lock);
    return t;
}

void tg_target_state_put(struct tg_target_state *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    if (atomic_fetch_sub(&t->refs, 1) == 1) {
        tg_list_remove(&t->link);
        free(t->upstream);
        free(t->url);
        free(t);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* ---- the bulkhead ---------------------------------------------------------------------- */

int tg_pool_enter(const struct tg_upstream *u)
{
    struct tg_pool *p = u->pool;
    /* Counted always (the retry budget and the gauge read it); optimistic: the place is taken,
     * and given back if it was one too many. */
    unsigned was = atomic_fetch_add_explicit(&p->in_flight, 1, memory_order_relaxed);

    if (u->max_in_flight > 0 && was >= u->max_in_flight) {
        atomic_fetch_sub_explicit(&p->in_flight, 1, memory_order_relaxed);
        TG_SHARED_ADD(&p->stats, rejected_overload, 1);
        return TG_EOVERLOAD;
    }
    return TG_OK;
}

void tg_pool_leave(const struct tg_upstream *u)
{
    atomic_fetch_sub_explicit(&u->pool->in_flight, 1, memory_order_relaxed);
}

/* ---- usable targets --------------------------------------------------------------------- */

static void log_returned(const struct tg_upstream *u, size_t i, const char *cause)
{
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_INFO, NULL, "upstream.returned");
    tg_logline_str(&l, "upstream", u->name);
    tg_logline_str(&l, "target", u->targets[i].url);
    tg_logline_str(&l, "cause", cause);
    tg_logline_end(&l);
}

/* Whether target i is ejected at now; an ejection that ran out is ended (once, by whoever swaps
 * the time back to 0). */
static bool is_ejected(const struct tg_upstream *u, size_t i, uint64_t now)
{
    struct tg_target_state *t = u->targets[i].state;
    uint64_t until = atomic_load_explicit(&t->ejected_until_us, memory_order_relaxed);

    if (until == 0) {
        return false;
    }
    if (until > now) {
        return true;
    }
    if (atomic_compare_exchange_strong(&t->ejected_until_us, &until, 0)) {
        atomic_store_explicit(&t->back_since_us, now, memory_order_relaxed);
        log_returned(u, i, "ejection over");
    }
    return false;
}

static bool is_down(const struct tg_upstream *u, size_t i)
{
    return atomic_load_explicit(&u->targets[i].state->down, memory_order_relaxed);
}

bool tg_pool_usable(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return !is_down(u, i) && !is_ejected(u, i, now);
}

size_t tg_pool_usable_count(const struct tg_upstream *u, uint64_t now)
{
    size_t n = 0;

    for (size_t i = 0; i < u->n_targets; i++) {
        n += tg_pool_usable(u, i, now);
    }
    return n;
}

void tg_pool_uneject(const struct tg_upstream *u, size_t i, uint64_t now)
{
    struct tg_target_state *t = u->targets[i].state;
    uint64_t until = atomic_load(&t->ejected_until_us);

    if (until != 0 && atomic_compare_exchange_strong(&t->ejected_until_us, &until, 0)) {
        atomic_store_explicit(&t->back_since_us, now, memory_order_relaxed);
        atomic_store_explicit(&t->consecutive, 0, memory_order_relaxed);
        log_returned(u, i, "health check passed");
    }
}

/* ---- balance ----------------------------------------------------------------------------- */

static unsigned weight_of(const struct tg_upstream *u, uint64_t set)
{
    unsigned total = 0;

    for (size_t i = 0; i < u->n_targets; i++) {
        total += (set >> i & 1u) != 0 ? u->targets[i].weight : 0;
    }
    return total;
}

/* A target of set (not empty), each with a chance proportional to its weight. */
static size_t pick_weighted(const struct tg_upstream *u, uint64_t set, uint32_t rnd)
{
    unsigned total = weight_of(u, set);
    unsigned r = total > 0 ? rnd % total : 0; /* weights are 1 or more: total is too */
    size_t last = 0;

    for (size_t i = 0; i < u->n_targets; i++) {
        if ((set >> i & 1u) == 0) {
            continue;
        }
        last = i;
        if (r < u->targets[i].weight) {
            return i;
        }
        r -= u->targets[i].weight;
    }
    return last;
}

/* Envoy's least request: two targets drawn by weight, the one with fewer attempts in flight
 * per unit of weight wins. One draw when only one target is left. */
static size_t pick_least_request(const struct tg_upstream *u, uint64_t set, uint64_t rnd)
{
    size_t a = pick_weighted(u, set, (uint32_t)rnd);
    uint64_t rest = set & ~((uint64_t)1 << a);
    size_t b;
    uint64_t load_a, load_b;

    if (rest == 0) {
        return a;
    }
    b = pick_weighted(u, rest, (uint32_t)(rnd >> 32));
    load_a =
        (uint64_t)(atomic_load_explicit(&u->targets[a].state->active, memory_order_relaxed) + 1) *
        u->targets[b].weight;
    load_b =
        (uint64_t)(atomic_load_explicit(&u->targets[b].state->active, memory_order_relaxed) + 1) *
        u->targets[a].weight;
    return load_b < load_a ? b : a;
}

/* Round robin by weight over every target; a turn that falls on a target outside set goes to
 * the next one in set. */
static size_t pick_round_robin(const struct tg_upstream *u, uint64_t set)
{
    unsigned total = weight_of(u, ((uint64_t)1 << u->n_targets) - 1);
    unsigned turn = atomic_fetch_add_explicit(&u->pool->rr, 1, memory_order_relaxed);
    unsigned r = total > 0 ? turn % total : 0; /* weights are 1 or more: total is too */
    size_t i = 0;

    while (r >= u->targets[i].weight) {
        r -= u->targets[i].weight;
        i++;
    }
    while ((set >> i & 1u) == 0) {
        i = (i + 1) % u->n_targets;
    }
    return i;
}

/* The targets a call may go to, as a bit set: the usable ones, or in panic (fewer than half
 * usable) every target that is not down. */
static uint64_t candidates(const struct tg_upstream *u, uint64_t now)
{
    uint64_t usable = 0, up = 0;
    size_t n_usable = 0;

    for (size_t i = 0; i < u->n_targets; i++) {
        if (is_down(u, i)) {
            continue;
        }
        up |= (uint64_t)1 << i;
        if (!is_ejected(u, i, now)) {
            usable |= (uint64_t)1 << i;
            n_usable++;
        }
    }
    return n_usable * 2 < u->n_targets ? up : usable;
}

int tg_pool_admit(const struct tg_upstream *u, uint64_t tried, uint64_t now, uint64_t rnd,
                  double r01, size_t *idx, const char **why)
{
    struct tg_pool *p = u->pool;
    uint64_t set;

    if (!tg_breaker_allow(&p->breaker, &u->breaker, now, r01)) {
        TG_SHARED_ADD(&p->stats, rejected_breaker, 1);
        atomic_store_explicit(&p->refused_us, now, memory_order_relaxed);
        *why = "breaker open";
        tg_pool_set_unstable(u, true, *why);
        return TG_EUNSTABLE;
    }
    set = candidates(u, now);
    if (set == 0) {
        TG_SHARED_ADD(&p->stats, rejected_no_target, 1);
        atomic_store_explicit(&p->refused_us, now, memory_order_relaxed);
        *why = "no usable target";
        tg_pool_set_unstable(u, true, *why);
        return TG_EUNSTABLE;
    }
    if ((set & ~tried) != 0) {
        set &= ~tried; /* a retry goes elsewhere when there is an elsewhere */
    }
    *idx = u->balance == TG_BALANCE_ROUND_ROBIN ? pick_round_robin(u, set)
                                                : pick_least_request(u, set, rnd);
    return TG_OK;
}

unsigned tg_pool_retry_after_s(const struct tg_upstream *u, uint64_t now)
{
    uint64_t soonest = 0;

    if (tg_pool_usable_count(u, now) > 0) {
        return 1;
    }
    for (size_t i = 0; i < u->n_targets; i++) {
        uint64_t until =
            atomic_load_explicit(&u->targets[i].state->ejected_until_us, memory_order_relaxed);
        if (until > now && (soonest == 0 || until < soonest)) {
            soonest = until;
        }
    }
    if (soonest == 0) {
        /* all down: the health checks will tell, at the earliest one interval from now */
        return u->hc.on ? (u->hc.interval_ms + 999) / 1000 : 1;
    }
    return (unsigned)((soonest - now + 999999) / 1000000);
}

void tg_pool_set_unstable(const struct tg_upstream *u, bool unstable, const char *reason)
{
    struct tg_pool *p = u->pool;
    bool was = !unstable;
    struct tg_logline l;

    if (atomic_load_explicit(&p->unstable, memory_order_relaxed) == unstable ||
        !atomic_compare_exchange_strong(&p->unstable, &was, unstable)) {
        return; /* already said, here or by another worker */
    }
    tg_logline_begin(&l, unstable ? TG_LOG_WARN : TG_LOG_INFO, NULL,
                     unstable ? "upstream.unstable" : "upstream.recovered");
    tg_logline_str(&l, "upstream", u->name);
    tg_logline_str(&l, "reason", reason);
    tg_logline_end(&l);
}
