/* The spool's two threads (spool/spool.h): the writer, which group-commits, and the reader,
 * which answers status lookups and refreshes the counts /metrics shows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/log.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "gateway/testhook.h"
#include "spool/fsinfo.h"
#include "spool/spool_internal.h"

#define EXPIRE_EVERY_MS     60000
#define PROBE_EVERY_MS      1000
#define COUNTS_MIN_MS       500   /* open states, at most this often after a change */
#define COUNTS_EVERY_MS     2000  /* open states at least this often */
#define COUNTS_ALL_EVERY_MS 30000 /* delivered and rejected too (a scan of everything) */
#define READER_WAKE_US      250000u
#define FULL_BACKOFF_US     50000u
#define ACK_EARLY_PAUSE_US  100000u /* test build only (TRACEGATE_TEST_ACK_BEFORE_COMMIT) */

/* ---- queues ------------------------------------------------------------------------------- */

void tg_spool_queue_init(struct op_queue *q)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->head = NULL;
    q->tail = &q->head;
    q->stop = false;
}

void tg_spool_queue_cleanup(struct op_queue *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

void tg_spool_queue_push(struct op_queue *q, struct tg_spool_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&q->lock);
    *q->tail = op;
    q->tail = &op->next;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct timespec mono_in_us(uint64_t us)
{
    uint64_t t = tg_now_us() + us;
    struct timespec ts = {(time_t)(t / 1000000u), (long)(t % 1000000u) * 1000};

    return ts;
}

/* Waits up to wait_us for operations, then (group_us > 0) up to group_us more for others to
 * join, and takes up to max of them. Returns the list, NULL when none came; *stop is set once
 * stop was asked and nothing is left. */
static struct tg_spool_op *take(struct op_queue *q, uint64_t wait_us, unsigned group_us,
                                unsigned max, bool *stop)
{
    struct timespec until = mono_in_us(wait_us);
    struct tg_spool_op *head;
    struct tg_spool_op **cut;
    unsigned n = 0;

    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->stop &&
           pthread_cond_timedwait(&q->cond, &q->lock, &until) != ETIMEDOUT) {
    }
    if (q->head != NULL && group_us > 0 && !q->stop) {
        until = mono_in_us(group_us);
        while (pthread_cond_timedwait(&q->cond, &q->lock, &until) != ETIMEDOUT) {
        }
    }
    head = q->head;
    cut = &q->head;
    while (*cut != NULL && n < max) {
        cut = &(*cut)->next;
        n++;
    }
    q->head = *cut;
    *cut = NULL;
    if (q->head == NULL) {
        q->tail = &q->head;
    }
    *stop = q->stop && q->head == NULL;
    pthread_mutex_unlock(&q->lock);
    return head;
}

/* ---- health ------------------------------------------------------------------------------ */

static void set_health(struct tg_spool *sp, int health, const char *why)
{
    int was = atomic_exchange(&tg_stats.durable.health, health);

    if (was == health || was == TG_SPOOL_FAILED) {
        if (was == TG_SPOOL_FAILED) {
            atomic_store(&tg_stats.durable.health, TG_SPOOL_FAILED); /* for good */
        }
        return;
    }
    sp->full = health == TG_SPOOL_FULL;
    if (health == TG_SPOOL_FAILED) {
        atomic_store(&sp->failed, true);
        tg_log(TG_LOG_ERROR, NULL, "spool.failed",
               "%s: %s; refusing submissions until a restart (the process stops)", sp->path, why);
        if (sp->on_failed != NULL) {
            sp->on_failed();
        }
    } else if (health == TG_SPOOL_FULL) {
        tg_log(TG_LOG_WARN, NULL, "spool.full", "%s: %s; refusing submissions (503)", sp->path,
               why);
    } else {
        tg_log(TG_LOG_INFO, NULL, "spool.accepting", "%s: %s", sp->path, why);
    }
}

/* Free disk under min_free_bytes counts as full (the WAL and the OS need room to stay sane),
 * unless the spool has that much room of its own that deliveries freed: new records reuse it
 * without growing the file. */
static bool disk_short(struct tg_spool *sp)
{
    uint64_t free_bytes = tg_spool_fs_free(sp->dir);
    uint64_t reusable = 0;

    atomic_store(&tg_stats.durable.disk_free_bytes, free_bytes);
    if (free_bytes == UINT64_MAX || free_bytes >= sp->min_free_bytes) {
        return false;
    }
    return sp->ops->reusable(sp->wstore, &reusable) != TG_OK || reusable < sp->min_free_bytes;
}

/* ---- the writer -------------------------------------------------------------------------- */

static bool is_store_error(int rc)
{
    return rc == TG_ESPOOL || rc == TG_EINTERNAL || rc == TG_ENOMEM;
}

static int exec_mark(struct tg_spool *sp, struct tg_spool_op *op)
{
    struct tg_spool_meta m;
    int rc = sp->ops->mark(sp->wstore, &op->u.mark.in);

    if (rc != TG_OK || !op->u.mark.want_answer) {
        return rc;
    }
    rc = sp->ops->get(sp->wstore, op->u.mark.in.id, &m, &op->u.mark.kept);
    op->u.mark.kept_status = rc == TG_OK ? m.answer_status : 0;
    return rc;
}

static int exec(struct tg_spool *sp, struct tg_spool_op *op)
{
    switch (op->kind) {
    case TG_SPOOL_OP_PUT:
        if (sp->full) {
            return TG_ESPOOL; /* no room: refuse before trying */
        }
        return sp->ops->put(sp->wstore, &op->u.put.in, &op->u.put.out);
    case TG_SPOOL_OP_ANSWER:
        return sp->ops->answer(sp->wstore, op->u.answer.id, op->u.answer.status, op->u.answer.blob,
                               op->u.answer.len, tg_spool_now_ms(), &op->u.answer.kept_status,
                               &op->u.answer.kept);
    case TG_SPOOL_OP_MARK:
        return exec_mark(sp, op);
    case TG_SPOOL_OP_CLAIM:
        return sp->ops->claim(sp->wstore, &op->u.claim.in, op->u.claim.fn, op->u.claim.arg);
    default:
        return TG_EINTERNAL;
    }
}

/* After a transaction lost for room (ESPOOL): outcomes go back to the head of the queue, to be
 * written once there is room (they free it); submissions and answers fail (their clients get 503
 * and retry with the same key); claims fail too (what they collected was rolled back; delivery
 * claims again). */
static void requeue_or_fail(struct tg_spool *sp, struct tg_spool_op *head)
{
    struct tg_spool_op *keep = NULL;
    struct tg_spool_op **tail = &keep;

    while (head != NULL) {
        struct tg_spool_op *next = head->next;
        if (head->kind == TG_SPOOL_OP_MARK) {
            tg_spool_blob_cleanup(&head->u.mark.kept); /* read again when it runs again */
            head->next = NULL;
            *tail = head;
            tail = &head->next;
        } else {
            head->rc = TG_ESPOOL;
            head->done(head);
        }
        head = next;
    }
    if (keep != NULL) {
        pthread_mutex_lock(&sp->wq.lock);
        *tail = sp->wq.head;
        if (sp->wq.head == NULL) {
            sp->wq.tail = tail;
        }
        sp->wq.head = keep;
        pthread_mutex_unlock(&sp->wq.lock);
        usleep(FULL_BACKOFF_US); /* room comes back by delivery, not by spinning */
    }
}

static void finish_all(struct tg_spool_op *head, int rc)
{
    while (head != NULL) {
        struct tg_spool_op *next = head->next; /* done may free the op */
        if (rc != TG_OK) {
            head->rc = rc;
        }
        head->done(head);
        head = next;
    }
}

/* The test build's negative control: tells PUT ops' owners before the commit. Returns the list
 * of the others. */
static struct tg_spool_op *ack_early(struct tg_spool_op *head)
{
    struct tg_spool_op *rest = NULL;
    struct tg_spool_op **tail = &rest;

    while (head != NULL) {
        struct tg_spool_op *next = head->next;
        if (head->kind == TG_SPOOL_OP_PUT && head->rc == TG_OK) {
            head->done(head);
        } else {
            head->next = NULL;
            *tail = head;
            tail = &head->next;
        }
        head = next;
    }
    return rest;
}

/* Runs a batch in one transaction; every op's done runs once, after the commit. */
static void run_batch(struct tg_spool *sp, struct tg_spool_op *head)
{
    bool puts = false, delivered = false, room = true;
    int rc;

    if (atomic_load(&sp->failed)) {
        finish_all(head, TG_ESPOOL);
        return;
    }
    for (struct tg_spool_op *op = head; op != NULL; op = op->next) {
        puts |= op->kind == TG_SPOOL_OP_PUT;
        delivered |= op->kind == TG_SPOOL_OP_MARK && op->has_delivered;
    }
    if (puts && disk_short(sp)) {
        set_health(sp, TG_SPOOL_FULL, "free disk below min_free_bytes");
    } else if (puts && !sp->full && sp->ops->has_room(sp->wstore, &room) == TG_OK && !room) {
        set_health(sp, TG_SPOOL_FULL, "max_bytes reached");
    }
    rc = sp->ops->begin(sp->wstore);
    for (struct tg_spool_op *op = head; rc == TG_OK && op != NULL; op = op->next) {
        op->rc = exec(sp, op);
        if (is_store_error(op->rc) && !(op->kind == TG_SPOOL_OP_PUT && sp->full)) {
            rc = op->rc; /* the transaction is lost: nothing in it counts */
        }
    }
    if (rc == TG_OK && puts && tg_testhook_ack_before_commit()) {
        head = ack_early(head);
        usleep(ACK_EARLY_PAUSE_US); /* a slow fsync's worth: the early answers leave meanwhile */
    }
    if (rc == TG_OK && puts) {
        tg_testhook_crash_point("before_accept_commit");
    }
    if (rc == TG_OK && delivered) {
        tg_testhook_crash_point("before_mark_delivered");
    }
    rc = rc != TG_OK ? rc : sp->ops->commit(sp->wstore);
    if (rc != TG_OK) {
        sp->ops->rollback(sp->wstore);
        atomic_fetch_add(&tg_stats.durable.write_errors, 1);
        if (rc == TG_ESPOOL) {
            set_health(sp, TG_SPOOL_FULL, "no room for the transaction");
            requeue_or_fail(sp, head);
            return;
        }
        set_health(sp, TG_SPOOL_FAILED, "a write or fsync failed");
        finish_all(head, TG_ESPOOL);
        return;
    }
    atomic_store(&sp->counts_dirty, true);
    if (puts) {
        tg_testhook_crash_point("after_accept_commit");
    }
    finish_all(head, TG_OK);
}

/* Expiry once a minute; while full, a probe once a second for room come back. */
static void upkeep(struct tg_spool *sp)
{
    int64_t now = tg_spool_now_ms();
    bool room = false;

    if (atomic_load(&sp->failed)) {
        return;
    }
    if (now >= sp->next_expire_ms) {
        int rc = sp->ops->begin(sp->wstore);
        rc = rc != TG_OK ? rc
                         : sp->ops->expire(sp->wstore, now - (int64_t)sp->response_ttl_s * 1000,
                                           now - (int64_t)sp->key_ttl_s * 1000);
        rc = rc != TG_OK ? rc : sp->ops->commit(sp->wstore);
        if (rc != TG_OK) {
            sp->ops->rollback(sp->wstore);
            if (rc == TG_EINTERNAL) {
                set_health(sp, TG_SPOOL_FAILED, "expiry failed to write");
            }
        }
        sp->next_expire_ms = now + EXPIRE_EVERY_MS;
    }
    if (sp->full && now >= sp->next_probe_ms) {
        sp->next_probe_ms = now + PROBE_EVERY_MS;
        if (!disk_short(sp) && sp->ops->has_room(sp->wstore, &room) == TG_OK && room) {
            set_health(sp, TG_SPOOL_OK, "room again: accepting submissions");
        }
    }
}

static void *writer_main(void *arg)
{
    struct tg_spool *sp = arg;
    bool stop = false;

    tg_log_batch_start();
    while (!stop) {
        uint64_t wait_us = sp->full ? PROBE_EVERY_MS * 1000ull : EXPIRE_EVERY_MS * 1000ull;
        struct tg_spool_op *batch =
            take(&sp->wq, wait_us, sp->group_commit_us, sp->group_commit_max, &stop);
        upkeep(sp);
        if (batch != NULL) {
            run_batch(sp, batch);
        }
        tg_log_flush();
    }
    tg_log_batch_stop();
    return NULL;
}

/* ---- the reader -------------------------------------------------------------------------- */

static void refresh_counts(struct tg_spool *sp, bool all)
{
    struct tg_spool_counts c;

    if (sp->ops->counts(sp->rstore, all, &c) != TG_OK) {
        return;
    }
    for (int i = 0; i < TG_SPOOL_STATE_N; i++) {
        if (all || (i != TG_SPOOL_DELIVERED && i != TG_SPOOL_REJECTED)) {
            atomic_store(&tg_stats.durable.records[i], c.by_state[i]);
        }
    }
    atomic_store(&tg_stats.durable.oldest_open_ms, c.oldest_open_ms);
    atomic_store(&tg_stats.durable.spool_bytes, c.bytes);
    atomic_store(&tg_stats.durable.disk_free_bytes, tg_spool_fs_free(sp->dir));
}

static void *reader_main(void *arg)
{
    struct tg_spool *sp = arg;
    uint64_t last = 0;
    uint64_t last_all = 0;
    bool stop = false;

    tg_log_batch_start();
    while (!stop) {
        struct tg_spool_op *op = take(&sp->rq, READER_WAKE_US, 0, 64, &stop);
        uint64_t now;
        while (op != NULL) {
            struct tg_spool_op *next = op->next;
            op->rc = sp->ops->get(sp->rstore, op->u.get.id, &op->u.get.meta, NULL);
            op->done(op);
            op = next;
        }
        now = tg_now_us();
        if (now >= last_all + COUNTS_ALL_EVERY_MS * 1000ull) {
            refresh_counts(sp, true);
            last = last_all = now;
            atomic_store(&sp->counts_dirty, false);
        } else if (now >= last + COUNTS_EVERY_MS * 1000ull ||
                   (now >= last + COUNTS_MIN_MS * 1000ull && atomic_load(&sp->counts_dirty))) {
            atomic_store(&sp->counts_dirty, false);
            refresh_counts(sp, false);
            last = now;
        }
        tg_log_flush();
    }
    tg_log_batch_stop();
    return NULL;
}

/* ---- the spool's side of it ---------------------------------------------------------------- */

void tg_spool_submit(struct tg_spool *sp, struct tg_spool_op *op)
{
    tg_spool_queue_push(op->kind == TG_SPOOL_OP_GET ? &sp->rq : &sp->wq, op);
}

int tg_spool_threads_start(struct tg_spool *sp)
{
    sp->next_expire_ms = 0; /* the first pass expires what waited while the gateway was down */
    if (pthread_create(&sp->writer, NULL, writer_main, sp) != 0) {
        return TG_EINTERNAL;
    }
    sp->writer_running = true;
    if (pthread_create(&sp->reader, NULL, reader_main, sp) != 0) {
        return TG_EINTERNAL;
    }
    sp->reader_running = true;
    return TG_OK;
}

static void stop_one(struct op_queue *q, pthread_t t, bool *running)
{
    if (!*running) {
        return;
    }
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(t, NULL);
    *running = false;
}

void tg_spool_threads_stop(struct tg_spool *sp)
{
    stop_one(&sp->wq, sp->writer, &sp->writer_running);
    stop_one(&sp->rq, sp->reader, &sp->reader_running);
}
