/* The workers: one thread each with its own loop, upstream client and HTTP server, and how a
 * worker drains (stop accepting, let requests finish within the grace, cancel the rest). */
#include "gateway/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "gateway/server.h"
#include "gateway/stats.h"
#include "gateway/upstream.h"

/* A drain that overstays its grace by this much stops the loop with requests still open. */
#define DRAIN_HARD_US 2000000u
#define DRAIN_TICK_MS 20

struct worker {
    pthread_t thread;
    unsigned index;
    bool running; /* the thread was created */
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_server *srv;
    struct tg_worker_stats stats;
    _Atomic(struct tg_conf *) next_conf; /* a reference handed over by main on reload */
    atomic_bool stop_requested;
    bool draining;
    uint64_t grace_end_us;
    uint64_t hard_end_us;
    bool cancelled_rest;
    unsigned grace_ms;
};

struct tg_workers {
    unsigned n;
    struct worker w[];
};

static void worker_begin_drain(struct worker *w)
{
    uint64_t now = tg_now_us();

    w->draining = true;
    w->grace_end_us = now + (uint64_t)w->grace_ms * 1000u;
    w->hard_end_us = w->grace_end_us + DRAIN_HARD_US;
    tg_server_quiesce(w->srv);
    tg_log(TG_LOG_INFO, NULL, "drain.start", "worker %u draining %u requests", w->index,
           tg_server_live(w->srv));
}

static void worker_on_wake(void *arg)
{
    struct worker *w = arg;
    struct tg_conf *c = atomic_exchange(&w->next_conf, NULL);

    if (c != NULL) {
        tg_server_set_conf(w->srv, c);
        /* Only listen and workers wait for a restart: the next drain uses the new grace. */
        w->grace_ms = c->shutdown_grace_ms;
        tg_conf_unref(c);
    }
    if (atomic_load(&w->stop_requested) && !w->draining) {
        worker_begin_drain(w);
    }
}

static void worker_tick(void *arg)
{
    struct worker *w = arg;
    uint64_t now;

    tg_log_flush();
    if (!w->draining) {
        return;
    }
    if (tg_server_live(w->srv) == 0) {
        tg_loop_stop(w->loop);
        return;
    }
    now = tg_now_us();
    if (!w->cancelled_rest && now >= w->grace_end_us) {
        w->cancelled_rest = true;
        tg_log(TG_LOG_WARN, NULL, "drain.cancel", "worker %u: grace over, cancelling %u requests",
               w->index, tg_server_live(w->srv));
        tg_server_cancel_all(w->srv, TG_EDRAIN);
    } else if (now >= w->hard_end_us) {
        tg_log(TG_LOG_WARN, NULL, "drain.abort", "worker %u: %u requests still open", w->index,
               tg_server_live(w->srv));
        tg_loop_stop(w->loop);
    }
}

static long worker_timeout(void *arg)
{
    struct worker *w = arg;

    return w->draining ? DRAIN_TICK_MS : -1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    tg_log_batch_start();
    tg_loop_run(w->loop);
    tg_log_batch_stop();
    return NULL;
}

static int worker_init(struct worker *w, struct tg_conf *conf, const struct tg_server_opts *o,
                       const struct tg_server_app *app)
{
    unsigned max_connects = conf->max_connections < 64 ? 64 : conf->max_connections;

    atomic_init(&w->next_conf, NULL);
    atomic_init(&w->stop_requested, false);
    w->grace_ms = conf->shutdown_grace_ms;
    w->stats.spans = tg_stats.span_rings[w->index];
    w->loop = tg_loop_new();
    if (w->loop == NULL) {
        return TG_ENOMEM;
    }
    w->up = tg_up_new(w->loop, max_connects);
    if (w->up == NULL) {
        return TG_ENOMEM;
    }
    w->srv = tg_server_start(w->loop, w->up, &w->stats, o, app, conf);
    if (w->srv == NULL) {
        return TG_EINVAL;
    }
    tg_loop_on_wake(w->loop, worker_on_wake, w);
    return tg_loop_add_hook(w->loop, worker_tick, worker_timeout, w);
}

static void worker_cleanup(struct worker *w)
{
    tg_conf_unref(atomic_exchange(&w->next_conf, NULL));
    tg_server_stop(w->srv);
    tg_up_free(w->up);
    tg_loop_free(w->loop);
    tg_stats_cleanup(&w->stats);
    w->srv = NULL;
    w->up = NULL;
    w->loop = NULL;
}

int tg_workers_start(unsigned n, struct tg_conf *conf, const struct tg_server_opts *o,
                     const struct tg_server_app *app, unsigned *port, struct tg_workers **out)
{
    struct tg_workers *ws = calloc(1, sizeof(*ws) + n * sizeof(ws->w[0]));
    struct tg_server_opts opts = *o;
    int rc = TG_OK;

    *out = NULL;
    if (ws == NULL) {
        return TG_ENOMEM;
    }
    ws->n = n;
    for (unsigned i = 0; i < n && rc == TG_OK; i++) {
        struct worker *w = &ws->w[i];
        w->index = i;
        rc = worker_init(w, conf, &opts, app);
        if (rc == TG_OK && i == 0) {
            opts.port = tg_server_port(w->srv); /* the others bind what the kernel picked */
        }
        if (rc == TG_OK) {
            tg_stats.workers[tg_stats.n++] = &w->stats;
        }
    }
    for (unsigned i = 0; i < n && rc == TG_OK; i++) {
        if (pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]) != 0) {
            tg_log(TG_LOG_ERROR, NULL, "worker.error", "pthread_create failed");
            rc = TG_EINTERNAL;
            break;
        }
        ws->w[i].running = true;
    }
    if (rc != TG_OK) {
        tg_workers_drain(ws);
        tg_workers_join(ws);
        return rc;
    }
    *port = opts.port;
    *out = ws;
    return TG_OK;
}

void tg_workers_reload(struct tg_workers *ws, struct tg_conf *conf)
{
    for (unsigned i = 0; i < ws->n; i++) {
        tg_conf_unref(atomic_exchange(&ws->w[i].next_conf, tg_conf_ref(conf)));
        tg_loop_wake(ws->w[i].loop);
    }
}

void tg_workers_drain(struct tg_workers *ws)
{
    for (unsigned i = 0; i < ws->n; i++) {
        atomic_store(&ws->w[i].stop_requested, true);
        if (ws->w[i].loop != NULL) {
            tg_loop_wake(ws->w[i].loop);
        }
    }
}

void tg_workers_wait(struct tg_workers *ws)
{
    if (ws == NULL) {
        return;
    }
    for (unsigned i = 0; i < ws->n; i++) {
        if (ws->w[i].running) {
            pthread_join(ws->w[i].thread, NULL);
            ws->w[i].running = false;
        }
    }
}

void tg_workers_join(struct tg_workers *ws)
{
    if (ws == NULL) {
        return;
    }
    tg_workers_wait(ws);
    for (unsigned i = 0; i < ws->n; i++) {
        worker_cleanup(&ws->w[i]);
    }
    tg_stats.n = 0;
    free(ws);
}
