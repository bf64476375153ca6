#include "gateway/retry.h"

#include <string.h>

#include "gateway/err.h"

void tg_retry_policy_default(struct tg_retry_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->max_attempts = 2;
    p->on = TG_RETRY_CONNECT | TG_RETRY_RESET;
    tg_status_set_add(&p->statuses, 502);
    tg_status_set_add(&p->statuses, 503);
    tg_status_set_add(&p->statuses, 504);
}

bool tg_retry_idempotent(const char *method)
{
    static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(method, methods[i]) == 0) {
            return true;
        }
    }
    return false;
}

bool tg_retry_allowed(const struct tg_retry_policy *p, const char *method, unsigned attempt,
                      const struct tg_attempt_result *r)
{
    if (attempt >= p->max_attempts) {
        return false;
    }
    /* Nothing reached the upstream: as safe for a POST as for a GET. */
    if (r->outcome == TG_OUT_CONNECT) {
        return (p->on & TG_RETRY_CONNECT) != 0;
    }
    if (!tg_retry_idempotent(method)) {
        return false; /* it was sent: the upstream may have acted on it */
    }
    switch (r->outcome) {
    case TG_OUT_RESET:
        return (p->on & TG_RETRY_RESET) != 0 && !r->answered;
    case TG_OUT_TIMEOUT:
        return (p->on & TG_RETRY_TIMEOUT) != 0;
    case TG_OUT_OK:
    case TG_OUT_BACKPRESSURE:
    case TG_OUT_STATUS:
        return r->status > 0 && tg_status_set_has(&p->statuses, r->status);
    default:
        return false;
    }
}

unsigned tg_retry_backoff_ms(unsigned retry, uint64_t rnd)
{
    unsigned ceiling = TG_RETRY_BASE_MS;

    for (unsigned i = 1; i < retry && ceiling < TG_RETRY_CAP_MS; i++) {
        ceiling *= 2;
    }
    if (ceiling > TG_RETRY_CAP_MS) {
        ceiling = TG_RETRY_CAP_MS;
    }
    return (unsigned)(rnd % (ceiling + 1u));
}

int tg_retry_budget_take(const struct tg_upstream *u)
{
    struct tg_pool *p = u->pool;
    unsigned active = atomic_load_explicit(&p->in_flight, memory_order_relaxed);
    unsigned allowed = active * u->budget.percent / 100u;

    if (allowed < u->budget.min) {
        allowed = u->budget.min;
    }
    if (atomic_fetch_add_explicit(&p->retrying, 1, memory_order_relaxed) >= allowed) {
        atomic_fetch_sub_explicit(&p->retrying, 1, memory_order_relaxed);
        TG_SHARED_ADD(&p->stats, retries_refused, 1);
        return TG_EOVERLOAD;
    }
    return TG_OK;
}

void tg_retry_budget_give(const struct tg_upstream *u)
{
    atomic_fetch_sub_explicit(&u->pool->retrying, 1, memory_order_relaxed);
}
