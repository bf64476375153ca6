#ifndef TG_ROUTES_DELIVER_INTERNAL_H
#define TG_ROUTES_DELIVER_INTERNAL_H

/* Private to routes/deliver.c (the thread, its lanes, claims, first attempts) and
 * routes/deliver_attempt.c (one attempt: send, judge, record). Both run on the delivery
 * thread, but for the spool operations' done callbacks, which run on the spool's writer. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/list.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "routes/deliver.h"
#include "spool/codec.h"
#include "spool/spool.h"

struct tg_durable_conf;

#define TG_DELIVER_LANES_MAX 32 /* durable routes one conf may have */

/* One durable route's backlog: how much of it is out, and the rate it may start more at. */
struct tg_lane {
    char route[TG_SPOOL_ROUTE_MAX + 1];
    const struct tg_durable_conf *dc; /* the route's, in the deliverer's conf (set with it) */
    unsigned in_flight;               /* backlog attempts out (first attempts are not counted) */
    double tokens; /* attempts it may start now (drain_rps per second, one second's worth) */
    uint64_t refill_us;
    uint64_t next_claim_us; /* when to ask the spool again (nothing was due) */
    uint64_t next_sweep_us; /* when a claim next also turns records past max_age dead */
    uint64_t due_us;        /* the earliest retry recorded since: ask then (0: none) */
    bool recheck;           /* an attempt ended while a claim was out: ask again at once */
    bool claiming;          /* a claim is at the spool */
};

struct tg_deliverer {
    pthread_t thread;
    bool running;
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_spool *sp;
    struct tg_conf *conf;                /* one reference: what attempts use */
    _Atomic(struct tg_conf *) next_conf; /* handed over on reload */
    struct tg_list active;               /* struct tg_delivery, attempts and their records */
    unsigned n_active;
    struct tg_lane lanes[TG_DELIVER_LANES_MAX];
    size_t n_lanes;
    unsigned pending_first;  /* first attempts posted, not yet taken (under the global lock) */
    atomic_bool drain_asked; /* set by main */
    bool draining;           /* the loop saw it */
    uint64_t grace_end_us;
    bool cancelled_rest;
};

/* One record on its way: the attempt (a request of its own, which the upstream call hangs off)
 * and the spool operations that record its outcome. */
struct tg_delivery {
    struct tg_req req; /* first: the upstream client knows this request */
    struct tg_list link;
    struct tg_deliverer *dl;
    char id[TG_SPOOL_ID_LEN + 1];
    char route[TG_SPOOL_ROUTE_MAX + 1];
    char key[TG_SPOOL_KEY_MAX + 1];
    char trace_id[TG_SPOOL_TRACE_MAX + 1];
    int64_t created_ms;
    int64_t age_ms;
    unsigned attempt;
    bool backlog;                   /* claimed (counted in its lane), not a first attempt */
    bool hold;                      /* its route's on_dead is "hold" */
    struct tg_deliver_first *first; /* a waiting client's, or NULL */
    uint8_t *plain;                 /* owned: the opened request of a claimed record */
    struct tg_spool_request rq;     /* decoded, pointing into plain or first->request */
    struct tg_kv stored[TG_CODEC_HEADERS_MAX];
    bool started;           /* the upstream call is out */
    bool sync_answered;     /* the deadline's 202 went to the spool */
    bool recorded;          /* the outcome went to the spool */
    atomic_int outstanding; /* the attempt and the operations not yet done */
    struct tg_spool_op mark;
    struct tg_spool_op answer;   /* the 202 at the sync deadline */
    struct tg_spool_blob sealed; /* the answer the mark may fix */
    struct tg_loop_task finish;
};

/* Starts the attempt of d (linked in dl->active). Delivery thread. */
void tg_delivery_start(struct tg_delivery *d);

/* The sync deadline of d's waiting client passed: its 202 goes to the spool. Delivery thread. */
void tg_delivery_deadline(struct tg_delivery *d);

/* Records d as not attempted (queued again, 202 for a waiting client), for a reason. Delivery
 * thread. */
void tg_delivery_skip(struct tg_delivery *d, const char *reason, int64_t retry_in_ms);

/* Called on the delivery thread when d is finished (its outcome recorded): frees it. */
void tg_delivery_finished(struct tg_deliverer *dl, struct tg_delivery *d);

/* The lane of route, or NULL. */
struct tg_lane *tg_deliver_lane(struct tg_deliverer *dl, const char *route);

/* A record of route was queued again to be tried at at_us: its lane claims no later than that
 * (rather than at its next poll). Delivery thread. */
void tg_deliver_due(struct tg_deliverer *dl, const char *route, uint64_t at_us);

#endif
