/* Passive outlier detection (Envoy's consecutive failures): what the end of an attempt does to
 * its target and to the upstream's breaker. The contracts are in gateway/pool.h. */
#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/pool.h"

void tg_pool_begin(const struct tg_upstream *u, size_t i)
{
    struct tg_target_state *t = u->targets[i].state;

    atomic_fetch_add_explicit(&t->active, 1, memory_order_relaxed);
    TG_SHARED_ADD(&t->stats, attempts, 1);
}

static void log_ejected(const struct tg_upstream *u, size_t i, unsigned failures, uint64_t ms,
                        unsigned n)
{
    struct tg_logline l;

    tg_logline_begin(&l, TG_LOG_WARN, NULL, "upstream.ejected");
    tg_logline_str(&l, "upstream", u->name);
    tg_logline_str(&l, "target", u->targets[i].url);
    tg_logline_int(&l, "failures", failures);
    tg_logline_int(&l, "ejection_ms", (int64_t)ms);
    tg_logline_int(&l, "ejections", n);
    tg_logline_end(&l);
}

/* How many targets of u are ejected at now. */
static size_t ejected_count(const struct tg_upstream *u, uint64_t now)
{
    size_t n = 0;

    for (size_t i = 0; i < u->n_targets; i++) {
        n += atomic_load_explicit(&u->targets[i].state->ejected_until_us, memory_order_relaxed) >
             now;
    }
    return n;
}

/* The length of target t's next ejection: base times n, n the ejections so far plus this one,
 * less one for every base period the target has served since it came back (Envoy's
 * multiplier, which decays while a target behaves), capped at max. Returns n in *mult. */
static uint64_t ejection_us(const struct tg_outlier *o, struct tg_target_state *t, uint64_t now,
                            unsigned *mult)
{
    uint64_t base = (uint64_t)o->base_ms * 1000u;
    uint64_t back = atomic_load_explicit(&t->back_since_us, memory_order_relaxed);
    uint64_t n = atomic_load_explicit(&t->ejections, memory_order_relaxed);
    uint64_t cap = (uint64_t)o->max_ms * 1000u;
    uint64_t served = back > 0 && now > back && base > 0 ? (now - back) / base : 0;

    n = (served >= n ? 0 : n - served) + 1;
    if (base > 0 && n > cap / base + 1) {
        n = cap / base + 1; /* grows no further once the cap is reached */
    }
    *mult = (unsigned)n;
    return base * n < cap ? base * n : cap;
}

/* Target i failed failures times in a row: eject it, unless it already is or that would eject
 * more than max_percent of the targets (then it stays in use: at most half of a pool, by
 * default, is ever out on passive evidence). Two workers deciding at once may pass the cap by
 * one. */
static void maybe_eject(const struct tg_upstream *u, size_t i, unsigned failures, uint64_t now)
{
    struct tg_target_state *t = u->targets[i].state;
    uint64_t until = atomic_load_explicit(&t->ejected_until_us, memory_order_relaxed);
    uint64_t len;
    unsigned mult;

    if (until > now ||
        (ejected_count(u, now) + 1) * 100 > (size_t)u->outlier.max_percent * u->n_targets) {
        return;
    }
    len = ejection_us(&u->outlier, t, now, &mult);
    if (!atomic_compare_exchange_strong(&t->ejected_until_us, &until, now + len)) {
        return; /* another worker ejected it just now */
    }
    atomic_store_explicit(&t->ejections, mult, memory_order_relaxed);
    atomic_store_explicit(&t->consecutive, 0, memory_order_relaxed);
    TG_SHARED_ADD(&t->stats, ejections, 1);
    log_ejected(u, i, failures, len / 1000u, mult);
}

static void count_failure(struct tg_target_state *t, enum tg_outcome o)
{
    switch (o) {
    case TG_OUT_STATUS:
        TG_SHARED_ADD(&t->stats, failed_status, 1);
        break;
    case TG_OUT_CONNECT:
        TG_SHARED_ADD(&t->stats, failed_connect, 1);
        break;
    case TG_OUT_RESET:
        TG_SHARED_ADD(&t->stats, failed_reset, 1);
        break;
    case TG_OUT_TIMEOUT:
        TG_SHARED_ADD(&t->stats, failed_timeout, 1);
        break;
    case TG_OUT_BACKPRESSURE:
        TG_SHARED_ADD(&t->stats, backpressure, 1);
        break;
    default:
        break;
    }
}

void tg_pool_end(const struct tg_upstream *u, size_t i, enum tg_outcome o, uint64_t now)
{
    struct tg_pool *p = u->pool;
    struct tg_target_state *t = u->targets[i].state;
    unsigned n;

    atomic_fetch_sub_explicit(&t->active, 1, memory_order_relaxed);
    count_failure(t, o);
    if (o == TG_OUT_NONE) {
        return; /* a cancel or a local failure says nothing about the target */
    }
    tg_breaker_record(&p->breaker, &u->breaker, now, o == TG_OUT_OK);
    switch (o) {
    case TG_OUT_OK:
        /* read first: a healthy pool writes nothing shared here */
        if (atomic_load_explicit(&t->consecutive, memory_order_relaxed) != 0) {
            atomic_store_explicit(&t->consecutive, 0, memory_order_relaxed);
        }
        /* Closes on success, once the breaker no longer throttles and nothing was refused for
         * a second: a ratio wavering about 0 says so once, not at every crossing. */
        if (atomic_load_explicit(&p->unstable, memory_order_relaxed) &&
            now - atomic_load_explicit(&p->refused_us, memory_order_relaxed) >=
                TG_BREAKER_PROBE_US &&
            tg_breaker_ratio(&p->breaker, &u->breaker, now) <= 0.0) {
            tg_pool_set_unstable(u, false, "calls succeed again");
        }
        return;
    case TG_OUT_BACKPRESSURE:
        return; /* 429: load shed on purpose; neither a failure nor a success of the target */
    default:
        break;
    }
    n = atomic_fetch_add_explicit(&t->consecutive, 1, memory_order_relaxed) + 1;
    if (u->outlier.consecutive > 0 && n >= u->outlier.consecutive) {
        maybe_eject(u, i, n, now);
    }
}
