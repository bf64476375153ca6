#include "gateway/health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/upstream.h"

#define HEALTH_CONNECTS 64 /* idle connections the checker's client keeps */

/* The checks of one target, for as long as one conf is current. */
struct probe {
    const struct tg_upstream *u; /* borrowed from the checker's conf */
    size_t i;                    /* the target */
    uint64_t look_us;            /* when to look again (check, or wait on while idle) */
    uint64_t last_us;            /* when the last check started; 0: none yet */
    struct tg_up_call *call;     /* the check in flight, or NULL */
    uint64_t calls_seen;         /* the upstream's call count at the last check */
};

struct tg_health {
    pthread_t thread;
    bool running;
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_conf *conf;                /* one reference: the conf the probes read */
    _Atomic(struct tg_conf *) next_conf; /* a reference handed over by main */
    atomic_bool stop;
    struct probe *probes; /* owned, one per checked target of conf */
    size_t n_probes;
};

static void log_change(const struct tg_upstream *u, size_t i, bool down, unsigned n,
                       const char *why, int status)
{
    struct tg_logline l;

    tg_logline_begin(&l, down ? TG_LOG_WARN : TG_LOG_INFO, NULL,
                     down ? "upstream.target_down" : "upstream.target_up");
    tg_logline_str(&l, "upstream", u->name);
    tg_logline_str(&l, "target", u->targets[i].url);
    tg_logline_int(&l, "checks", n);
    if (down) {
        tg_logline_int(&l, "status", status);
        tg_logline_str(&l, "reason", why);
    }
    tg_logline_end(&l);
}

/* One check's verdict on target i: its streaks, and a change of state after enough of them. */
static void judge(const struct tg_upstream *u, size_t i, bool pass, const char *why, int status,
                  uint64_t now)
{
    struct tg_target_state *t = u->targets[i].state;
    bool down = atomic_load(&t->down);

    if (pass) {
        TG_SHARED_ADD(&t->stats, checks_passed, 1);
        t->check_fails = 0;
        t->check_passes++;
        if (down && t->check_passes >= u->hc.healthy) {
            atomic_store(&t->down, false);
            log_change(u, i, false, t->check_passes, NULL, status);
        }
        tg_pool_uneject(u, i, now); /* Envoy's default: a passed check ends an ejection */
        return;
    }
    TG_SHARED_ADD(&t->stats, checks_failed, 1);
    t->check_passes = 0;
    t->check_fails++;
    if (!down && t->check_fails >= u->hc.unhealthy) {
        atomic_store(&t->down, true);
        log_change(u, i, true, t->check_fails, why, status);
    }
}

/* Whether p checks now. An interval after its last check when the upstream had calls since,
 * the idle interval when it had none (passive detection has nothing to go on then, but nothing
 * is at stake either). While idle it looks again every interval, so a check follows soon after
 * calls come back. */
static bool is_due(struct probe *p, uint64_t now)
{
    uint64_t calls = atomic_load_explicit(&p->u->pool->stats.calls, memory_order_relaxed);
    uint64_t interval = (uint64_t)p->u->hc.interval_ms * 1000u;
    uint64_t idle_end = p->last_us + (uint64_t)p->u->hc.idle_interval_ms * 1000u;

    if (p->call != NULL || now < p->look_us) {
        return false;
    }
    if (p->last_us == 0 || calls != p->calls_seen || now >= idle_end) {
        p->last_us = now;
        p->calls_seen = calls;
        return true;
    }
    p->look_us = now + interval < idle_end ? now + interval : idle_end;
    return false;
}

static void probe_done(void *arg, struct tg_up_call *call, int err)
{
    struct probe *p = arg;
    int status = tg_up_call_status(call);
    uint64_t now = tg_now_us();

    p->call = NULL;
    if (err == TG_ECANCELED) {
        return; /* dropped by a reload or the stop: no verdict */
    }
    judge(p->u, p->i, err == TG_OK && tg_status_set_has(&p->u->hc.expect, status),
          err != TG_OK ? tg_up_call_detail(call) : "unexpected status", status, now);
    p->look_us = now + (uint64_t)p->u->hc.interval_ms * 1000u;
}

static void start_due(struct tg_health *h, uint64_t now)
{
    for (size_t k = 0; k < h->n_probes; k++) {
        struct probe *p = &h->probes[k];
        if (!is_due(p, now)) {
            continue;
        }
        if (tg_up_probe(h->up, p->u, p->i, probe_done, p, &p->call) != TG_OK) {
            p->call = NULL; /* out of memory: try again an interval later */
            p->look_us = now + (uint64_t)p->u->hc.interval_ms * 1000u;
        }
    }
}

static void health_tick(void *arg)
{
    start_due(arg, tg_now_us());
}

static long health_timeout(void *arg)
{
    struct tg_health *h = arg;
    uint64_t now = tg_now_us(), first = 0;

    for (size_t k = 0; k < h->n_probes; k++) {
        const struct probe *p = &h->probes[k];
        if (p->call == NULL && (first == 0 || p->look_us < first)) {
            first = p->look_us;
        }
    }
    if (first == 0) {
        return -1;
    }
    return first <= now ? 0 : (long)((first - now + 999) / 1000);
}

static void drop_probes(struct tg_health *h)
{
    for (size_t k = 0; k < h->n_probes; k++) {
        if (h->probes[k].call != NULL) {
            tg_up_cancel(h->probes[k].call, TG_ECANCELED, "health checks stopped");
        }
    }
    TG_FREE(h->probes);
    h->n_probes = 0;
}

/* A probe for every target of every upstream of conf with checks, each due now. */
static int make_probes(struct tg_health *h, uint64_t now)
{
    const struct tg_conf *c = h->conf;
    size_t n = 0;

    for (size_t j = 0; j < c->n_upstreams; j++) {
        n += c->upstreams[j].hc.on ? c->upstreams[j].n_targets : 0;
    }
    if (n == 0) {
        return TG_OK;
    }
    h->probes = calloc(n, sizeof(*h->probes));
    if (h->probes == NULL) {
        return TG_ENOMEM;
    }
    for (size_t j = 0; j < c->n_upstreams; j++) {
        const struct tg_upstream *u = &c->upstreams[j];
        for (size_t i = 0; u->hc.on && i < u->n_targets && h->n_probes < n; i++) {
            h->probes[h->n_probes++] = (struct probe){.u = u, .i = i, .look_us = now};
        }
    }
    return TG_OK;
}

static void health_wake(void *arg)
{
    struct tg_health *h = arg;
    struct tg_conf *c = atomic_exchange(&h->next_conf, NULL);

    if (c != NULL) {
        drop_probes(h);
        tg_conf_unref(h->conf);
        h->conf = c;
        if (make_probes(h, tg_now_us()) != TG_OK) {
            tg_log(TG_LOG_ERROR, NULL, "health.error", "out of memory: no health checks");
        }
    }
    if (atomic_load(&h->stop)) {
        drop_probes(h);
        tg_loop_stop(h->loop);
    }
}

static void *health_main(void *arg)
{
    struct tg_health *h = arg;

    tg_loop_run(h->loop);
    return NULL;
}

static void health_free(struct tg_health *h)
{
    drop_probes(h);
    tg_up_free(h->up);
    tg_loop_free(h->loop);
    tg_conf_unref(atomic_exchange(&h->next_conf, NULL));
    tg_conf_unref(h->conf);
    free(h);
}

int tg_health_start(struct tg_conf *conf, struct tg_health **out)
{
    struct tg_health *h = calloc(1, sizeof(*h));
    int rc = TG_ENOMEM;

    *out = NULL;
    if (h == NULL) {
        return TG_ENOMEM;
    }
    atomic_init(&h->next_conf, NULL);
    atomic_init(&h->stop, false);
    h->conf = tg_conf_ref(conf);
    h->loop = tg_loop_new();
    h->up = h->loop != NULL ? tg_up_new(h->loop, HEALTH_CONNECTS) : NULL;
    if (h->up == NULL || make_probes(h, tg_now_us()) != TG_OK ||
        tg_loop_add_hook(h->loop, health_tick, health_timeout, h) != TG_OK) {
        goto out;
    }
    tg_loop_on_wake(h->loop, health_wake, h);
    if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
        rc = TG_EINTERNAL;
        goto out;
    }
    h->running = true;
    *out = h;
    h = NULL;
    rc = TG_OK;
out:
    if (h != NULL) {
        tg_log(TG_LOG_ERROR, NULL, "health.error", "cannot start the health checker");
        health_free(h);
    }
    return rc;
}

void tg_health_reload(struct tg_health *h, struct tg_conf *conf)
{
    tg_conf_unref(atomic_exchange(&h->next_conf, tg_conf_ref(conf)));
    tg_loop_wake(h->loop);
}

void tg_health_stop(struct tg_health *h)
{
    if (h == NULL) {
        return;
    }
    atomic_store(&h->stop, true);
    tg_loop_wake(h->loop);
    if (h->running) {
        pthread_join(h->thread, NULL);
    }
    health_free(h);
}
