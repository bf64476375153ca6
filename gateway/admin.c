/* The admin listener: one thread, one loop, one HTTP server without upstream calls. */
#include "gateway/admin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/server.h"
#include "gateway/stats.h"

struct tg_admin {
    pthread_t thread;
    bool running;
    struct tg_loop *loop;
    struct tg_server *srv;
    struct tg_worker_stats stats;        /* its own: not summed into /metrics */
    _Atomic(struct tg_conf *) next_conf; /* a reference handed over on reload */
    atomic_bool stop_requested;
};

static void admin_on_wake(void *arg)
{
    struct tg_admin *a = arg;
    struct tg_conf *c = atomic_exchange(&a->next_conf, NULL);

    if (c != NULL) {
        tg_server_set_conf(a->srv, c);
        tg_conf_unref(c);
    }
    if (atomic_load(&a->stop_requested)) {
        tg_loop_stop(a->loop);
    }
}

static void admin_tick(void *arg)
{
    (void)arg;
    tg_log_flush();
}

static long admin_timeout(void *arg)
{
    (void)arg;
    return -1;
}

static void *admin_main(void *arg)
{
    struct tg_admin *a = arg;

    tg_log_batch_start();
    tg_loop_run(a->loop);
    tg_log_batch_stop();
    return NULL;
}

int tg_admin_start(const struct tg_server_opts *o, const struct tg_server_app *app,
                   struct tg_conf *conf, unsigned *port, struct tg_admin **out)
{
    struct tg_admin *a = calloc(1, sizeof(*a));
    int rc = TG_ENOMEM;

    *out = NULL;
    if (a == NULL) {
        return rc;
    }
    atomic_init(&a->next_conf, NULL);
    atomic_init(&a->stop_requested, false);
    a->loop = tg_loop_new();
    if (a->loop == NULL) {
        goto fail;
    }
    rc = TG_EINVAL;
    a->srv = tg_server_start(a->loop, NULL, &a->stats, o, app, conf);
    if (a->srv == NULL) {
        goto fail;
    }
    tg_loop_on_wake(a->loop, admin_on_wake, a);
    rc = tg_loop_add_hook(a->loop, admin_tick, admin_timeout, a);
    if (rc != TG_OK) {
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        tg_log(TG_LOG_ERROR, NULL, "admin.error", "pthread_create failed");
        rc = TG_EINTERNAL;
        goto fail;
    }
    a->running = true;
    *port = tg_server_port(a->srv);
    *out = a;
    return TG_OK;
fail:
    tg_admin_stop(a);
    return rc;
}

void tg_admin_reload(struct tg_admin *a, struct tg_conf *conf)
{
    if (a == NULL) {
        return;
    }
    tg_conf_unref(atomic_exchange(&a->next_conf, tg_conf_ref(conf)));
    tg_loop_wake(a->loop);
}

void tg_admin_stop(struct tg_admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->running) {
        atomic_store(&a->stop_requested, true);
        tg_loop_wake(a->loop);
        pthread_join(a->thread, NULL);
    }
    tg_conf_unref(atomic_exchange(&a->next_conf, NULL));
    tg_server_stop(a->srv);
    tg_loop_free(a->loop);
    tg_stats_cleanup(&a->stats);
    free(a);
}
