/* The upstream pools' metrics: which counter or gauge each TG_M_POOL_* family reads, for each
 * upstream and target of the conf. The families themselves (name, help, type, labels) are rows
 * of the table in gateway/metrics.c. */
#include "gateway/metrics_pool.h"

#include <stdatomic.h>
#include <stdint.h>

#include "gateway/breaker.h"
#include "gateway/conf.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/stats.h"

/* One series of a family: a counter at an offset of the pool's or the target's stats, or a
 * gauge computed by value; extra is the value of the family's last label, or NULL. */
struct series {
    enum tg_metric family;
    bool per_target;
    const char *extra;
    size_t off; /* SIZE_MAX: a gauge */
    double (*value)(const struct tg_upstream *u, size_t i, uint64_t now);
};

static double g_unstable(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)i;
    (void)now;
    return atomic_load_explicit(&u->pool->unstable, memory_order_relaxed) ? 1 : 0;
}

static double g_drop_ratio(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)i;
    return tg_breaker_ratio(&u->pool->breaker, &u->breaker, now);
}

static double g_target_in_flight(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)now;
    return (double)atomic_load_explicit(&u->targets[i].state->active, memory_order_relaxed);
}

static double g_ejected(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return atomic_load_explicit(&u->targets[i].state->ejected_until_us, memory_order_relaxed) > now
               ? 1
               : 0;
}

static double g_healthy(const struct tg_upstream *u, size_t i, uint64_t now)
{
    (void)now;
    return atomic_load_explicit(&u->targets[i].state->down, memory_order_relaxed) ? 0 : 1;
}

static double g_usable(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return tg_pool_usable(u, i, now) ? 1 : 0;
}

static const struct series table[] = {
    {TG_M_POOL_REQUESTS, false, NULL, offsetof(struct tg_pool_stats, calls), NULL},
    {TG_M_POOL_RETRIES, false, NULL, offsetof(struct tg_pool_stats, retries), NULL},
    {TG_M_POOL_RETRIES_REFUSED, false, NULL, offsetof(struct tg_pool_stats, retries_refused), NULL},
    {TG_M_POOL_REJECTED, false, "breaker", offsetof(struct tg_pool_stats, rejected_breaker), NULL},
    {TG_M_POOL_REJECTED, false, "no_target", offsetof(struct tg_pool_stats, rejected_no_target),
     NULL},
    {TG_M_POOL_REJECTED, false, "max_in_flight", offsetof(struct tg_pool_stats, rejected_overload),
     NULL},
    {TG_M_POOL_UNSTABLE, false, NULL, SIZE_MAX, g_unstable},
    {TG_M_POOL_DROP_RATIO, false, NULL, SIZE_MAX, g_drop_ratio},
    {TG_M_POOL_ATTEMPTS, true, NULL, offsetof(struct tg_target_stats, attempts), NULL},
    {TG_M_POOL_FAILURES, true, "status", offsetof(struct tg_target_stats, failed_status), NULL},
    {TG_M_POOL_FAILURES, true, "connect", offsetof(struct tg_target_stats, failed_connect), NULL},
    {TG_M_POOL_FAILURES, true, "reset", offsetof(struct tg_target_stats, failed_reset), NULL},
    {TG_M_POOL_FAILURES, true, "timeout", offsetof(struct tg_target_stats, failed_timeout), NULL},
    {TG_M_POOL_BACKPRESSURE, true, NULL, offsetof(struct tg_target_stats, backpressure), NULL},
    {TG_M_POOL_EJECTIONS, true, NULL, offsetof(struct tg_target_stats, ejections), NULL},
    {TG_M_POOL_CHECKS, true, "pass", offsetof(struct tg_target_stats, checks_passed), NULL},
    {TG_M_POOL_CHECKS, true, "fail", offsetof(struct tg_target_stats, checks_failed), NULL},
    {TG_M_POOL_TARGET_IN_FLIGHT, true, NULL, SIZE_MAX, g_target_in_flight},
    {TG_M_POOL_TARGET_EJECTED, true, NULL, SIZE_MAX, g_ejected},
    {TG_M_POOL_TARGET_HEALTHY, true, NULL, SIZE_MAX, g_healthy},
    {TG_M_POOL_TARGET_USABLE, true, NULL, SIZE_MAX, g_usable},
};

static double value_of(const struct series *s, const struct tg_upstream *u, size_t i, uint64_t now)
{
    const void *stats =
        s->per_target ? (const void *)&u->targets[i].state->stats : (const void *)&u->pool->stats;

    if (s->value != NULL) {
        return s->value(u, i, now);
    }
    return (double)atomic_load_explicit(
        (const _Atomic uint64_t *)(const void *)((const char *)stats + s->off),
        memory_order_relaxed);
}

void tg_metrics_pool_collect(enum tg_metric m, const struct tg_conf *conf,
                             tg_metrics_pool_emit_fn *emit, void *arg)
{
    uint64_t now = tg_now_us();

    if (conf == NULL) {
        return;
    }
    for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
        const struct series *s = &table[k];
        if (s->family != m) {
            continue;
        }
        for (size_t j = 0; j < conf->n_upstreams; j++) {
            const struct tg_upstream *u = &conf->upstreams[j];
            size_t n = s->per_target ? u->n_targets : 1;
            for (size_t i = 0; i < n; i++) {
                const char *labels[3] = {u->name, NULL, NULL};
                labels[1] = s->per_target ? u->targets[i].url : s->extra;
                labels[2] = s->per_target ? s->extra : NULL;
                emit(arg, labels, value_of(s, u, i, now));
            }
        }
    }
}
