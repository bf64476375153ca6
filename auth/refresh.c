/* The JWKS refresher thread: fetches key sets through its own curl multi, on its own loop. */
#include "auth/refresh.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/issuer.h"
#include "auth/jose.h"
#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "gateway/trace_context.h"
#include "gateway/upstream.h"

#define FETCH_TIMEOUT_MS 10000
#define JWKS_BODY_MAX    ((size_t)1 << 20)
#define RETRY_FIRST_US   1000000u /* Envoy refetches 1 s after a failure */
#define RETRY_MAX_US     60000000u

struct tg_auth_refresher {
    pthread_t thread;
    bool running;
    struct tg_loop *loop;
    struct tg_up *up;
    pthread_mutex_t mu;   /* guards next and stop */
    struct tg_conf *next; /* handed over by the main thread */
    bool stop;
    struct tg_conf *conf; /* whose issuers are fetched (one reference) */
    struct tg_list fetches;
};

/* One fetch: a request of the refresher's own, so that the upstream client treats it as any
 * other call (trace headers, budget, cancel). */
struct fetch {
    struct tg_req req;
    struct tg_auth_issuer *iss;
    struct tg_list link;
};

static struct tg_auth *auth_of(const struct tg_conf *conf)
{
    return conf != NULL ? conf->auth : NULL;
}

static void fetch_free(struct fetch *f)
{
    tg_list_remove(&f->link);
    f->iss->fetching = false;
    tg_req_cleanup(&f->req);
    free(f);
}

static void schedule_retry(struct tg_auth_issuer *iss, uint64_t now)
{
    uint64_t wait = RETRY_FIRST_US;

    for (unsigned i = 1; i < iss->failures && wait < RETRY_MAX_US; i++) {
        wait *= 2;
    }
    iss->next_fetch_us = now + (wait < RETRY_MAX_US ? wait : RETRY_MAX_US);
}

static void on_fetched(void *arg, struct tg_up_call *call, int err)
{
    struct fetch *f = arg;
    struct tg_auth_issuer *iss = f->iss;
    struct tg_jwks *keys = NULL;
    const char *why = tg_up_call_detail(call);
    int status = tg_up_call_status(call);
    uint64_t now = tg_now_us();
    size_t len = 0;
    char *body;

    if (err == TG_OK && status != 200) {
        why = "status not 200";
        err = TG_EUPSTREAM;
    }
    if (err == TG_OK) {
        body = tg_up_call_take_body(call, &len);
        err = tg_jwks_parse(body != NULL ? body : "", len, &keys, &why);
        free(body);
    }
    if (err == TG_OK) {
        tg_log(TG_LOG_INFO, &f->req, "auth.jwks", "issuer %s: %zu keys", iss->name,
               tg_jwks_count(keys));
        tg_auth_set_keys(iss, keys);
        tg_jwks_unref(keys);
        iss->failures = 0;
        iss->next_fetch_us = now + (uint64_t)iss->refresh_s * 1000000u;
    } else if (err != TG_EDRAIN) {
        iss->failures++;
        schedule_retry(iss, now);
        tg_log(TG_LOG_WARN, &f->req, "auth.jwks_failed",
               "issuer %s: %s (status %d); keeping the last key set", iss->name,
               why != NULL ? why : tg_strerror(err), status);
    }
    fetch_free(f);
}

/* A fresh trace for the fetch: it is nobody's request. */
static void fetch_trace(struct tg_req *req)
{
    uint8_t span[8];

    tg_trace_new_uuid(req->trace.bin, req->trace.id);
    tg_hex_lower(req->trace.bin, 16, req->trace.w3c);
    tg_trace_new_span(span);
    tg_hex_lower(span, 8, req->trace.span);
    req->trace.flags = 1;
}

static void start_fetch(struct tg_auth_refresher *r, struct tg_auth_issuer *iss, uint64_t now)
{
    struct fetch *f = calloc(1, sizeof(*f));
    struct tg_up_request u = {
        .label = "jwks",
        .method = "GET",
        .url = iss->jwks_url,
        .timeout_ms = FETCH_TIMEOUT_MS,
        .connect_timeout_ms = 2000,
        .max_body = JWKS_BODY_MAX,
    };
    int rc;

    if (f == NULL) {
        iss->failures++;
        schedule_retry(iss, now);
        return;
    }
    tg_req_init(&f->req);
    f->req.conf = tg_conf_ref(r->conf);
    f->req.up = r->up;
    f->req.method = "GET";
    f->req.start_us = now;
    f->req.deadline_us = now + (uint64_t)FETCH_TIMEOUT_MS * 1000u;
    fetch_trace(&f->req);
    f->iss = iss;
    tg_list_push(&r->fetches, &f->link);
    iss->fetching = true;
    rc = tg_up_start(r->up, &f->req, &u, on_fetched, f, NULL);
    if (rc != TG_OK) {
        tg_log(TG_LOG_WARN, &f->req, "auth.jwks_failed", "issuer %s: %s", iss->name,
               tg_strerror(rc));
        iss->failures++;
        schedule_retry(iss, now);
        fetch_free(f);
    }
}

/* When iss wants its next fetch: its schedule, or sooner for an unknown kid (rate-limited). */
static uint64_t due_us(const struct tg_auth_issuer *iss)
{
    uint64_t due = iss->next_fetch_us;

    if (atomic_load(&iss->want_fetch)) {
        uint64_t kid_due = iss->last_kid_fetch_us + TG_AUTH_KID_REFETCH_US;
        if (iss->last_kid_fetch_us == 0 || kid_due < due) {
            due = iss->last_kid_fetch_us == 0 ? 0 : kid_due;
        }
    }
    return due;
}

static void refresher_tick(void *arg)
{
    struct tg_auth_refresher *r = arg;
    struct tg_auth *auth = auth_of(r->conf);
    uint64_t now = tg_now_us();

    for (size_t i = 0; auth != NULL && i < auth->n; i++) {
        struct tg_auth_issuer *iss = &auth->issuers[i];
        if (iss->jwks_url == NULL || iss->fetching || due_us(iss) > now) {
            continue;
        }
        if (atomic_exchange(&iss->want_fetch, false)) {
            iss->last_kid_fetch_us = now;
        }
        start_fetch(r, iss, now);
    }
}

static long refresher_timeout(void *arg)
{
    struct tg_auth_refresher *r = arg;
    struct tg_auth *auth = auth_of(r->conf);
    uint64_t now = tg_now_us();
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; auth != NULL && i < auth->n; i++) {
        const struct tg_auth_issuer *iss = &auth->issuers[i];
        if (iss->jwks_url != NULL && !iss->fetching && due_us(iss) < next) {
            next = due_us(iss);
        }
    }
    if (next == UINT64_MAX) {
        return -1;
    }
    return next <= now ? 0 : (long)((next - now + 999) / 1000);
}

static void cancel_fetches(struct tg_auth_refresher *r)
{
    while (!tg_list_is_empty(&r->fetches)) {
        struct fetch *f = TG_LIST_ENTRY(r->fetches.next, struct fetch, link);
        tg_up_cancel_req(&f->req, TG_EDRAIN); /* its done frees it */
    }
}

/* Adopts conf: its issuers wake this loop from now on, the old conf's no longer. */
static void adopt(struct tg_auth_refresher *r, struct tg_conf *conf)
{
    struct tg_auth *old = auth_of(r->conf);

    cancel_fetches(r);
    if (old != NULL) {
        atomic_store(&old->refresher, NULL);
    }
    tg_conf_unref(r->conf);
    r->conf = conf;
    if (auth_of(conf) != NULL) {
        atomic_store(&auth_of(conf)->refresher, r->loop);
    }
}

static void refresher_on_wake(void *arg)
{
    struct tg_auth_refresher *r = arg;
    struct tg_conf *next;
    bool stop;

    pthread_mutex_lock(&r->mu);
    next = r->next;
    r->next = NULL;
    stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    if (next != NULL) {
        adopt(r, next);
    }
    if (stop) {
        adopt(r, NULL);
        tg_loop_stop(r->loop);
    }
}

static void *refresher_main(void *arg)
{
    struct tg_auth_refresher *r = arg;

    tg_loop_run(r->loop);
    return NULL;
}

static void refresher_free(struct tg_auth_refresher *r)
{
    adopt(r, NULL);
    tg_conf_unref(r->next);
    tg_up_free(r->up);
    tg_loop_free(r->loop);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int tg_auth_refresher_start(struct tg_conf *conf, struct tg_auth_refresher **out)
{
    struct tg_auth_refresher *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL) {
        return TG_ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    tg_list_init(&r->fetches);
    r->loop = tg_loop_new();
    r->up = r->loop != NULL ? tg_up_new(r->loop, 8) : NULL;
    if (r->up == NULL || tg_loop_add_hook(r->loop, refresher_tick, refresher_timeout, r) != TG_OK) {
        refresher_free(r);
        return TG_ENOMEM;
    }
    tg_loop_on_wake(r->loop, refresher_on_wake, r);
    adopt(r, tg_conf_ref(conf));
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        tg_log(TG_LOG_ERROR, NULL, "auth.error", "cannot start the JWKS refresher");
        refresher_free(r);
        return TG_EINTERNAL;
    }
    r->running = true;
    *out = r;
    return TG_OK;
}

void tg_auth_refresher_set_conf(struct tg_auth_refresher *r, struct tg_conf *conf)
{
    pthread_mutex_lock(&r->mu);
    tg_conf_unref(r->next);
    r->next = tg_conf_ref(conf);
    pthread_mutex_unlock(&r->mu);
    tg_loop_wake(r->loop);
}

void tg_auth_refresher_stop(struct tg_auth_refresher *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_mutex_unlock(&r->mu);
    tg_loop_wake(r->loop);
    if (r->running) {
        pthread_join(r->thread, NULL);
    }
    refresher_free(r);
}
