/* A request waiting on another thread (gateway/wait.h). */
#include "gateway/wait.h"

#include <stddef.h>

#include "gateway/req.h"

/* What the request keeps in its memory: when it ends, the wait lets go of it. */
struct wait_ref {
    struct tg_wait *w;
};

static const char wait_key; /* tags the request memory holding the reference */

static void on_req_end(void *p)
{
    struct wait_ref *ref = p;

    if (ref->w != NULL) {
        tg_wait_detach(ref->w);
    }
}

static void run_resume(struct tg_loop_task *task)
{
    struct tg_wait *w = (struct tg_wait *)(void *)((char *)task - offsetof(struct tg_wait, task));
    struct tg_req *req = w->req;

    if (req != NULL) {
        struct wait_ref *ref = tg_req_get(req, &wait_key);
        /* The request is resumed: it stops holding w (resume may answer and end it). */
        w->req = NULL;
        pthread_mutex_lock(&w->lock);
        w->loop = NULL;
        pthread_mutex_unlock(&w->lock);
        if (ref != NULL) {
            ref->w = NULL;
        }
        w->resume(req, w);
        tg_wait_drop(w); /* the request's hold */
    }
    tg_wait_drop(w); /* the task's hold */
}

int tg_wait_init(struct tg_wait *w, struct tg_req *req,
                 void (*resume)(struct tg_req *req, struct tg_wait *w),
                 void (*release)(struct tg_wait *w))
{
    struct wait_ref *ref = tg_req_alloc(req, &wait_key, sizeof(*ref), on_req_end);

    if (ref == NULL) {
        return TG_ENOMEM;
    }
    atomic_init(&w->refs, 1);
    pthread_mutex_init(&w->lock, NULL);
    w->loop = req->loop;
    w->req = req;
    w->woken = false;
    w->task.fn = run_resume;
    w->resume = resume;
    w->release = release;
    ref->w = w;
    return TG_OK;
}

void tg_wait_hold(struct tg_wait *w)
{
    atomic_fetch_add(&w->refs, 1);
}

void tg_wait_drop(struct tg_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->lock);
        w->release(w);
    }
}

void tg_wait_wake(struct tg_wait *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->loop != NULL && !w->woken) {
        w->woken = true;
        tg_wait_hold(w); /* the task's, dropped when it ran */
        tg_loop_post(w->loop, &w->task);
    }
    pthread_mutex_unlock(&w->lock);
}

void tg_wait_detach(struct tg_wait *w)
{
    struct tg_req *req = w->req;

    if (req == NULL) {
        return; /* resumed or detached already */
    }
    struct wait_ref *ref = tg_req_get(req, &wait_key);
    if (ref != NULL) {
        ref->w = NULL;
    }
    w->req = NULL;
    pthread_mutex_lock(&w->lock);
    w->loop = NULL;
    pthread_mutex_unlock(&w->lock);
    tg_wait_drop(w); /* the request's hold */
}

void tg_wait_cancel(struct tg_req *req)
{
    struct wait_ref *ref = tg_req_get(req, &wait_key);

    if (ref != NULL && ref->w != NULL) {
        tg_wait_detach(ref->w);
    }
}
