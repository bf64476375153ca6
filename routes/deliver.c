/* The delivery thread (routes/deliver.h): its loop and upstream client, the lanes that pace each
 * durable route's backlog, claims from the spool, first attempts handed over by waiting
 * requests, the sync deadlines, and a drain that lets attempts finish before it stops. */
#include "routes/deliver.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/stats.h"
#include "gateway/upstream.h"
#include "routes/deliver_internal.h"
#include "routes/durable.h"
#include "routes/table.h"

#define CLAIM_POLL_US  1000000u /* with nothing due, ask the spool again after this */
#define CLAIM_MAX      64
#define SWEEP_EVERY_US 5000000u /* records past max_age are looked for this often */
#define TICK_MS_DRAIN  20
#define MAX_CONNECTS   256

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER; /* guards cur and its pending_first */
static struct tg_deliverer *cur;

/* ---- lanes ---------------------------------------------------------------------------------- */

void tg_deliver_due(struct tg_deliverer *dl, const char *route, uint64_t at_us)
{
    struct tg_lane *lane = tg_deliver_lane(dl, route);

    if (lane != NULL && (lane->due_us == 0 || at_us < lane->due_us)) {
        lane->due_us = at_us;
    }
}

struct tg_lane *tg_deliver_lane(struct tg_deliverer *dl, const char *route)
{
    for (size_t i = 0; i < dl->n_lanes; i++) {
        if (strcmp(dl->lanes[i].route, route) == 0) {
            return &dl->lanes[i];
        }
    }
    return NULL;
}

/* One lane per durable route of conf; a route that stays keeps its counts. */
static void set_lanes(struct tg_deliverer *dl, const struct tg_conf *conf)
{
    struct tg_lane next[TG_DELIVER_LANES_MAX];
    size_t n = 0;

    for (size_t i = 0; i < tg_route_table_count(conf->routes) && n < TG_DELIVER_LANES_MAX; i++) {
        const struct tg_route *r = tg_route_table_at(conf->routes, i);
        const struct tg_durable_conf *dc = tg_durable_of(conf->routes, r->name, NULL);
        if (dc == NULL) {
            continue;
        }
        const struct tg_lane *old = tg_deliver_lane(dl, r->name);
        if (old != NULL) {
            next[n] = *old;
        } else {
            next[n] = (struct tg_lane){.tokens = 1, .refill_us = tg_now_us()};
            snprintf(next[n].route, sizeof(next[0].route), "%s", r->name);
        }
        next[n++].dc = dc;
    }
    memcpy(dl->lanes, next, n * sizeof(next[0]));
    dl->n_lanes = n;
}

static void refill(struct tg_lane *lane, const struct tg_durable_conf *dc, uint64_t now)
{
    double burst = dc->drain_rps; /* one second's worth */

    lane->tokens += (double)(now - lane->refill_us) * dc->drain_rps / 1e6;
    if (lane->tokens > burst) {
        lane->tokens = burst;
    }
    lane->refill_us = now;
}

/* ---- deliveries ----------------------------------------------------------------------------- */

static void run_finish(struct tg_loop_task *task)
{
    struct tg_delivery *d =
        (struct tg_delivery *)(void *)((char *)task - offsetof(struct tg_delivery, finish));

    tg_delivery_finished(d->dl, d);
}

static struct tg_delivery *delivery_new(struct tg_deliverer *dl)
{
    struct tg_delivery *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->dl = dl;
    d->finish.fn = run_finish;
    tg_list_init(&d->link);
    tg_list_push(&dl->active, &d->link);
    dl->n_active++;
    return d;
}

void tg_delivery_finished(struct tg_deliverer *dl, struct tg_delivery *d)
{
    struct tg_lane *lane = d->backlog ? tg_deliver_lane(dl, d->route) : NULL;

    if (lane != NULL && lane->in_flight > 0) {
        lane->in_flight--;
    }
    lane = tg_deliver_lane(dl, d->route);
    if (lane != NULL) {
        /* Room for the next one, and with an order key its next record is free now. */
        lane->recheck = true;
    }
    tg_list_remove(&d->link);
    dl->n_active--;
    if (d->first != NULL) {
        d->first->release(d->first);
    }
    tg_req_cleanup(&d->req);
    tg_spool_blob_cleanup(&d->sealed);
    free(d->plain);
    free(d);
}

/* A first attempt, on the delivery thread. */
static void run_first(struct tg_loop_task *task)
{
    struct tg_deliver_first *f =
        (struct tg_deliver_first *)(void *)((char *)task - offsetof(struct tg_deliver_first, task));
    struct tg_deliverer *dl;
    struct tg_delivery *d;

    pthread_mutex_lock(&cur_lock);
    dl = cur;
    dl->pending_first--;
    pthread_mutex_unlock(&cur_lock);
    d = delivery_new(dl);
    if (d == NULL) {
        f->answered(f, TG_ESPOOL, 0, &(struct tg_spool_blob){0});
        f->release(f);
        return;
    }
    d->first = f;
    d->attempt = 1;
    d->created_ms = d->age_ms = f->created_ms;
    memcpy(d->id, f->id, sizeof(d->id));
    memcpy(d->route, f->route, sizeof(d->route));
    memcpy(d->key, f->key, sizeof(d->key));
    memcpy(d->trace_id, f->trace_id, sizeof(d->trace_id));
    if (tg_codec_request_decode(f->request, f->request_len, &d->rq, d->stored) != TG_OK) {
        tg_req_init(&d->req);
        d->req.conf = tg_conf_ref(dl->conf);
        atomic_init(&d->outstanding, 1);
        tg_delivery_skip(d, "cannot read the stored request", 0);
        return;
    }
    tg_delivery_start(d);
}

int tg_deliver_first(struct tg_deliver_first *f)
{
    struct tg_deliverer *dl;

    pthread_mutex_lock(&cur_lock);
    dl = cur;
    if (dl == NULL || atomic_load(&dl->drain_asked)) {
        pthread_mutex_unlock(&cur_lock);
        return TG_EDRAIN;
    }
    dl->pending_first++;
    f->task.fn = run_first;
    tg_loop_post(dl->loop, &f->task);
    pthread_mutex_unlock(&cur_lock);
    return TG_OK;
}

/* ---- claims --------------------------------------------------------------------------------- */

struct claim {
    struct tg_spool_op op;
    struct tg_deliverer *dl;
    struct tg_loop_task task;
    char route[TG_SPOOL_ROUTE_MAX + 1];
    struct {
        struct tg_spool_meta meta;
        struct tg_spool_blob request;
    } rows[CLAIM_MAX];
    size_t n;
};

/* Writer thread, inside the claim's transaction. */
static int take_row(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *request)
{
    struct claim *c = arg;

    if (c->n == CLAIM_MAX) {
        return TG_OK;
    }
    c->rows[c->n].meta = *m;
    c->rows[c->n].request = *request;
    *request = (struct tg_spool_blob){0};
    c->n++;
    return TG_OK;
}

static int on_dead(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *request)
{
    struct tg_logline l;

    (void)arg;
    (void)request;
    atomic_fetch_add(&tg_stats.durable.attempts[TG_ATTEMPT_DEAD], 1);
    tg_logline_begin(&l, TG_LOG_ERROR, NULL, "durable.dead");
    tg_logline_str(&l, "trace_id", m->trace_id);
    tg_logline_str(&l, "submission_id", m->id);
    tg_logline_str(&l, "route", m->route);
    tg_logline_int(&l, "attempts", m->attempts);
    tg_logline_str(&l, "reason", "max age reached");
    tg_logline_end(&l);
    return TG_OK;
}

/* A claimed record: opened, decoded, sent. */
static void start_claimed(struct tg_deliverer *dl, struct tg_lane *lane,
                          const struct tg_spool_meta *m, struct tg_spool_blob *request)
{
    struct tg_delivery *d = delivery_new(dl);
    size_t n = 0;
    int rc;

    if (d == NULL) {
        return; /* stays delivering; the next start requeues it */
    }
    d->backlog = true;
    lane->in_flight++;
    d->attempt = m->attempts;
    d->created_ms = m->created_ms;
    d->age_ms = m->age_ms;
    memcpy(d->id, m->id, sizeof(d->id));
    memcpy(d->route, m->route, sizeof(d->route));
    memcpy(d->key, m->key, sizeof(d->key));
    memcpy(d->trace_id, m->trace_id, sizeof(d->trace_id));
    rc = tg_spool_unseal(dl->sp, m->id, "request", request->p, request->len, &d->plain, &n);
    rc = rc != TG_OK ? rc : tg_codec_request_decode(d->plain, n, &d->rq, d->stored);
    if (rc != TG_OK) {
        tg_req_init(&d->req);
        d->req.conf = tg_conf_ref(dl->conf);
        atomic_init(&d->outstanding, 1);
        /* Its key was retired, or the bytes are damaged: it cannot be sent, ever. */
        tg_delivery_skip(d, rc == TG_ENOTFOUND ? "sealed under a retired key" : "unreadable",
                         86400000);
        return;
    }
    tg_delivery_start(d);
}

static void run_claimed(struct tg_loop_task *task)
{
    struct claim *c = (struct claim *)(void *)((char *)task - offsetof(struct claim, task));
    struct tg_deliverer *dl = c->dl;
    struct tg_lane *lane = tg_deliver_lane(dl, c->route);

    if (lane != NULL) {
        lane->claiming = false;
        /* Nothing due: ask again at the next poll, at a retry's time, or at once when an attempt
         * ended meanwhile (its patient's next record may be free now). */
        lane->next_claim_us = c->n == 0 && !lane->recheck ? tg_now_us() + CLAIM_POLL_US : 0;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (lane != NULL && c->op.rc == TG_OK) {
            start_claimed(dl, lane, &c->rows[i].meta, &c->rows[i].request);
        }
        tg_spool_blob_cleanup(&c->rows[i].request);
    }
    free(c);
}

static void on_claimed(struct tg_spool_op *op)
{
    struct claim *c = (struct claim *)(void *)op;

    tg_loop_post(c->dl->loop, &c->task);
}

static void claim(struct tg_deliverer *dl, struct tg_lane *lane, const struct tg_durable_conf *dc,
                  unsigned max)
{
    struct claim *c = calloc(1, sizeof(*c));
    int64_t now = tg_spool_now_ms();

    if (c == NULL) {
        return;
    }
    c->dl = dl;
    c->task.fn = run_claimed;
    memcpy(c->route, lane->route, sizeof(c->route));
    c->op.kind = TG_SPOOL_OP_CLAIM;
    c->op.done = on_claimed;
    c->op.u.claim.in = (struct tg_spool_claim){
        .route = c->route,
        .now_ms = now,
        .dead_before_ms = now - (int64_t)dc->retry.max_age_s * 1000,
        .sweep = tg_now_us() >= lane->next_sweep_us,
        .hold = dc->hold_dead,
        .max = max > CLAIM_MAX ? CLAIM_MAX : max,
        .dead_fn = on_dead,
    };
    c->op.u.claim.fn = take_row;
    c->op.u.claim.arg = c;
    lane->claiming = true;
    if (c->op.u.claim.in.sweep) {
        lane->next_sweep_us = tg_now_us() + SWEEP_EVERY_US;
    }
    lane->tokens -= c->op.u.claim.in.max;
    tg_spool_submit(dl->sp, &c->op);
}

/* ---- the loop's pass ------------------------------------------------------------------------ */

static void pace(struct tg_deliverer *dl, uint64_t now)
{
    for (size_t i = 0; i < dl->n_lanes; i++) {
        struct tg_lane *lane = &dl->lanes[i];
        const struct tg_durable_conf *dc = lane->dc;
        refill(lane, dc, now);
        bool due = lane->recheck || now >= lane->next_claim_us ||
                   (lane->due_us != 0 && now >= lane->due_us);
        if (lane->claiming || !due || lane->in_flight >= dc->delivery_concurrency ||
            lane->tokens < 1) {
            continue;
        }
        unsigned room = dc->delivery_concurrency - lane->in_flight;
        unsigned budget = (unsigned)lane->tokens;
        lane->recheck = false;
        if (lane->due_us != 0 && now >= lane->due_us) {
            lane->due_us = 0; /* this claim takes what was due by now */
        }
        claim(dl, lane, dc, room < budget ? room : budget);
    }
}

static void sync_deadlines(struct tg_deliverer *dl, uint64_t now)
{
    struct tg_list *pos;
    struct tg_list *nxt;

    TG_LIST_FOREACH_SAFE(pos, nxt, &dl->active)
    {
        struct tg_delivery *d = TG_LIST_ENTRY(pos, struct tg_delivery, link);
        if (d->first != NULL && !d->sync_answered && !d->recorded &&
            now >= d->first->sync_deadline_us) {
            tg_delivery_deadline(d);
        }
    }
}

static bool claims_out(const struct tg_deliverer *dl)
{
    for (size_t i = 0; i < dl->n_lanes; i++) {
        if (dl->lanes[i].claiming) {
            return true;
        }
    }
    return false;
}

static void drain_step(struct tg_deliverer *dl, uint64_t now)
{
    unsigned pending;

    if (!dl->draining) {
        dl->draining = true;
        dl->grace_end_us = now + (uint64_t)dl->conf->shutdown_grace_ms * 1000u;
        tg_log(TG_LOG_INFO, NULL, "delivery.drain", "%u attempts out", dl->n_active);
    }
    if (!dl->cancelled_rest && now >= dl->grace_end_us) {
        struct tg_list *pos;
        struct tg_list *nxt;
        dl->cancelled_rest = true;
        TG_LIST_FOREACH_SAFE(pos, nxt, &dl->active)
        {
            struct tg_delivery *d = TG_LIST_ENTRY(pos, struct tg_delivery, link);
            if (d->started && !d->recorded) {
                tg_up_cancel_req(&d->req, TG_EDRAIN);
            }
        }
    }
    pthread_mutex_lock(&cur_lock);
    pending = dl->pending_first;
    pthread_mutex_unlock(&cur_lock);
    /* Cancelled attempts still record their outcome: the spool always answers, so the loop
     * waits for that rather than leaving a record half-told. */
    if (dl->n_active == 0 && pending == 0 && !claims_out(dl)) {
        tg_loop_stop(dl->loop);
    }
}

static void tick(void *arg)
{
    struct tg_deliverer *dl = arg;
    struct tg_conf *next = atomic_exchange(&dl->next_conf, NULL);
    uint64_t now = tg_now_us();

    tg_log_flush();
    if (next != NULL) {
        tg_conf_unref(dl->conf);
        dl->conf = next;
        set_lanes(dl, next);
    }
    sync_deadlines(dl, now);
    if (atomic_load(&dl->drain_asked)) {
        drain_step(dl, now);
        return;
    }
    pace(dl, now);
}

/* The next time a pass is needed: a claim, a sync deadline, tokens back; the drain's tick. */
static long timeout(void *arg)
{
    struct tg_deliverer *dl = arg;
    uint64_t now = tg_now_us();
    uint64_t best = now + CLAIM_POLL_US;
    struct tg_list *pos;

    if (atomic_load(&dl->drain_asked)) {
        return TICK_MS_DRAIN;
    }
    for (size_t i = 0; i < dl->n_lanes; i++) {
        const struct tg_lane *lane = &dl->lanes[i];
        if (lane->claiming || lane->in_flight >= lane->dc->delivery_concurrency) {
            continue;
        }
        uint64_t at = lane->recheck ? now : lane->next_claim_us;
        if (lane->due_us != 0 && lane->due_us < at) {
            at = lane->due_us;
        }
        if (lane->tokens < 1) {
            uint64_t refill_at = now + (uint64_t)((1 - lane->tokens) * 1e6 / lane->dc->drain_rps);
            at = at > refill_at ? at : refill_at;
        }
        best = at < best ? at : best;
    }
    for (pos = dl->active.next; pos != &dl->active; pos = pos->next) {
        const struct tg_delivery *d = TG_LIST_ENTRY(pos, struct tg_delivery, link);
        if (d->first != NULL && !d->sync_answered && !d->recorded &&
            d->first->sync_deadline_us < best) {
            best = d->first->sync_deadline_us;
        }
    }
    return best <= now ? 0 : (long)((best - now + 999) / 1000);
}

static void on_wake(void *arg)
{
    (void)arg; /* the tick after the wake reads what changed */
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void *main_loop(void *arg)
{
    struct tg_deliverer *dl = arg;

    tg_log_batch_start();
    tg_loop_run(dl->loop);
    tg_log_batch_stop();
    return NULL;
}

static void deliverer_free(struct tg_deliverer *dl)
{
    if (dl == NULL) {
        return;
    }
    tg_up_free(dl->up);
    tg_loop_free(dl->loop);
    tg_conf_unref(atomic_exchange(&dl->next_conf, NULL));
    tg_conf_unref(dl->conf);
    free(dl);
}

int tg_deliver_start(struct tg_conf *conf, struct tg_spool *sp, struct tg_deliverer **out)
{
    struct tg_deliverer *dl = calloc(1, sizeof(*dl));

    *out = NULL;
    if (dl == NULL) {
        return TG_ENOMEM;
    }
    tg_list_init(&dl->active);
    atomic_init(&dl->next_conf, NULL);
    atomic_init(&dl->drain_asked, false);
    dl->sp = sp;
    dl->conf = tg_conf_ref(conf);
    dl->loop = tg_loop_new();
    dl->up = dl->loop != NULL ? tg_up_new(dl->loop, MAX_CONNECTS) : NULL;
    if (dl->up == NULL || tg_loop_add_hook(dl->loop, tick, timeout, dl) != TG_OK) {
        deliverer_free(dl);
        return TG_ENOMEM;
    }
    tg_loop_on_wake(dl->loop, on_wake, dl);
    set_lanes(dl, conf);
    if (pthread_create(&dl->thread, NULL, main_loop, dl) != 0) {
        deliverer_free(dl);
        return TG_EINTERNAL;
    }
    dl->running = true;
    pthread_mutex_lock(&cur_lock);
    cur = dl;
    pthread_mutex_unlock(&cur_lock);
    *out = dl;
    return TG_OK;
}

void tg_deliver_reload(struct tg_deliverer *dl, struct tg_conf *conf)
{
    tg_conf_unref(atomic_exchange(&dl->next_conf, tg_conf_ref(conf)));
    tg_loop_wake(dl->loop);
}

void tg_deliver_drain(struct tg_deliverer *dl)
{
    /* Under the lock: a first attempt is either posted before (and run) or refused after. */
    pthread_mutex_lock(&cur_lock);
    atomic_store(&dl->drain_asked, true);
    pthread_mutex_unlock(&cur_lock);
    tg_loop_wake(dl->loop);
}

void tg_deliver_join(struct tg_deliverer *dl)
{
    if (dl == NULL) {
        return;
    }
    tg_deliver_drain(dl);
    if (dl->running) {
        pthread_join(dl->thread, NULL);
    }
    pthread_mutex_lock(&cur_lock);
    cur = NULL;
    pthread_mutex_unlock(&cur_lock);
    deliverer_free(dl);
}

bool tg_deliver_resend_ok(const char *route, void *arg)
{
    const struct tg_conf *conf = arg;
    const struct tg_durable_conf *dc = tg_durable_of(conf->routes, route, NULL);

    /* A route gone from the conf: resending is what delivery would do once it is back. */
    return dc == NULL || dc->backend_dedup;
}
