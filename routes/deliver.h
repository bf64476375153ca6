#ifndef TG_ROUTES_DELIVER_H
#define TG_ROUTES_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"
#include "gateway/loop.h"
#include "spool/store.h"

struct tg_conf;
struct tg_spool;

/* Delivery: one thread with its own loop and upstream client (gateway/upstream.c, the same code
 * as live traffic) sends what the spool holds to each durable route's backend. Two lanes:
 *   first attempts  a new submission on an "on_failure" route, tried at once while its client
 *                   waits up to sync_wait_ms; live traffic, not held back by the limits below
 *   the backlog     due records claimed from the spool (retries after a failure, "always"
 *                   routes, what waited for its turn in a patient's order), at most
 *                   delivery_concurrency in flight and drain_rps started per second per route,
 *                   so that a backlog drains gently after an outage and never takes the
 *                   capacity live requests need.
 * Each attempt forwards the Idempotency-Key, the submission id and when the patient submitted;
 * its outcome goes back to the spool (delivered, rejected, retry with full-jitter backoff,
 * dead past max_age, unknown when the backend cannot deduplicate). */

struct tg_deliverer;

/* A first attempt handed over by a waiting durable request (routes/durable.c). */
struct tg_deliver_first {
    char id[TG_SPOOL_ID_LEN + 1];
    char route[TG_SPOOL_ROUTE_MAX + 1];
    char key[TG_SPOOL_KEY_MAX + 1];
    char trace_id[TG_SPOOL_TRACE_MAX + 1];
    int64_t created_ms;
    const uint8_t *request; /* the encoded request (spool/codec.h), borrowed until release */
    size_t request_len;
    const struct tg_spool_blob *accepted; /* the sealed 202, borrowed until release */
    uint64_t sync_deadline_us;            /* CLOCK_MONOTONIC: the 202 is fixed then */
    /* Once the first answer stands (the backend's, or the 202), or the spool failed (rc): on the
     * spool's writer thread, once. kept is the callee's. */
    void (*answered)(struct tg_deliver_first *f, int rc, int status, struct tg_spool_blob *kept);
    /* Delivery is done with f (any thread). */
    void (*release)(struct tg_deliver_first *f);
    struct tg_loop_task task; /* delivery's while handed over */
};

/* Starts the delivery thread on conf (a reference is taken) and sp. TG_OK or a negative tg_err.
 * Main thread. */
int tg_deliver_start(struct tg_conf *conf, struct tg_spool *sp,
                     struct tg_deliverer **out) TG_MUST_CHECK;

/* Hands conf (a reference is taken) to the delivery thread: new attempts use its routes. */
void tg_deliver_reload(struct tg_deliverer *dl, struct tg_conf *conf);

/* Stops claiming; attempts in flight get shutdown_grace_ms to finish, then are cancelled (and
 * recorded as such). Returns at once. */
void tg_deliver_drain(struct tg_deliverer *dl);

/* Waits until the thread finished every attempt and recorded every outcome, then frees it.
 * NULL is a no-op. */
void tg_deliver_join(struct tg_deliverer *dl);

/* Hands a first attempt to the running delivery thread. TG_OK; TG_EDRAIN when there is none or
 * it is stopping (the caller keeps f and records the record as queued itself). Any thread. */
int tg_deliver_first(struct tg_deliver_first *f) TG_MUST_CHECK;

/* For the spool's recovery at start: whether records of route may be sent again after an
 * attempt whose outcome is unknown (its backend deduplicates). arg is the conf. */
bool tg_deliver_resend_ok(const char *route, void *arg);

#endif
