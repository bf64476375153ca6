#ifndef TG_GATEWAY_WAIT_H
#define TG_GATEWAY_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gateway/err.h"
#include "gateway/loop.h"

struct tg_req;

/* A request that waits on another thread (the spool's): the other thread finishes and calls
 * tg_wait_wake; the request's loop then runs resume, unless the request went away meanwhile
 * (client gone, drain, connection closed), in which case nobody is resumed and the work's result
 * is simply dropped. The object embedding the wait lives until every holder let go: the request
 * (until it ends or is resumed) and each thread that took a hold. */
struct tg_wait {
    atomic_int refs;
    pthread_mutex_t lock;     /* guards loop against a detach racing a wake */
    struct tg_loop *loop;     /* the request's loop; NULL once the request let go */
    struct tg_req *req;       /* loop thread only; NULL once the request let go */
    struct tg_loop_task task; /* the resume, posted once */
    bool woken;               /* guarded by lock */
    /* On the request's loop, once, while the request still waits. */
    void (*resume)(struct tg_req *req, struct tg_wait *w);
    /* Frees the object embedding w; runs once, on whichever thread let go last. */
    void (*release)(struct tg_wait *w);
};

/* Sets w up for req (one hold: the request's) and ties it to req's memory, so that the request
 * lets go when it ends however it ends. TG_OK or TG_ENOMEM (then w is untouched and the caller
 * frees it). Loop thread. */
int tg_wait_init(struct tg_wait *w, struct tg_req *req,
                 void (*resume)(struct tg_req *req, struct tg_wait *w),
                 void (*release)(struct tg_wait *w)) TG_MUST_CHECK;

/* Another holder (a thread that will call tg_wait_wake or read w later). Any thread. */
void tg_wait_hold(struct tg_wait *w);

/* A holder lets go; the last one releases. Any thread. */
void tg_wait_drop(struct tg_wait *w);

/* The work is done: resume runs on the request's loop (once, however often this is called),
 * unless the request let go. Any thread; the caller keeps its own hold. */
void tg_wait_wake(struct tg_wait *w);

/* The request stops waiting (cancelled): no resume from now on. Loop thread; idempotent. */
void tg_wait_detach(struct tg_wait *w);

/* tg_wait_detach for the wait req holds, if any: a handler's cancel. Loop thread. */
void tg_wait_cancel(struct tg_req *req);

#endif
