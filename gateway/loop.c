#include "gateway/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gateway/err.h"
#include "gateway/log.h"

#define LOOP_EVENTS    256
#define LOOP_HOOKS_MAX 4
#define ZERO_RUNS      4 /* tick rounds in a row for hooks that want a zero timeout */

struct fd_slot {
    tg_loop_io_fn *fn; /* NULL: not watched */
    void *arg;
    uint32_t gen;
    uint32_t events; /* as registered in the epoll set */
    bool in_set;     /* registered (a parked fd stays registered, fn NULL) */
    bool tracked;    /* its owner reports the close (tg_loop_forget): it may be parked */
};

struct hook {
    tg_loop_tick_fn *tick;
    tg_loop_timeout_fn *timeout;
    void *arg;
};

struct tg_loop {
    int epfd;
    int wakefd;
    struct fd_slot *slots; /* owned, indexed by fd */
    size_t n_slots;
    struct hook hooks[LOOP_HOOKS_MAX];
    size_t n_hooks;
    tg_loop_tick_fn *wake_fn;
    void *wake_arg;
    bool stop;
    pthread_mutex_t tasks_lock; /* guards tasks and tasks_tail: any thread posts */
    struct tg_loop_task *tasks; /* posted, oldest first */
    struct tg_loop_task **tasks_tail;
};

static uint64_t pack(uint32_t gen, int fd)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

struct tg_loop *tg_loop_new(void)
{
    struct tg_loop *loop = calloc(1, sizeof(*loop));
    struct epoll_event ev = {.events = EPOLLIN};

    if (loop == NULL) {
        return NULL;
    }
    pthread_mutex_init(&loop->tasks_lock, NULL);
    loop->tasks_tail = &loop->tasks;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd == -1 || loop->wakefd == -1) {
        tg_log(TG_LOG_ERROR, NULL, "loop.error", "epoll/eventfd: %m");
        goto fail;
    }
    ev.data.u64 = pack(0, -1);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) == -1) {
        tg_log(TG_LOG_ERROR, NULL, "loop.error", "epoll_ctl: %m");
        goto fail;
    }
    return loop;
fail:
    tg_loop_free(loop);
    return NULL;
}

/* Runs every task posted so far, oldest first; tasks posted meanwhile wait for the next call. */
static void run_tasks(struct tg_loop *loop)
{
    struct tg_loop_task *t;

    pthread_mutex_lock(&loop->tasks_lock);
    t = loop->tasks;
    loop->tasks = NULL;
    loop->tasks_tail = &loop->tasks;
    pthread_mutex_unlock(&loop->tasks_lock);
    while (t != NULL) {
        struct tg_loop_task *next = t->next; /* fn may free t */
        t->fn(t);
        t = next;
    }
}

void tg_loop_free(struct tg_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    run_tasks(loop);
    pthread_mutex_destroy(&loop->tasks_lock);
    if (loop->epfd > 0) {
        close(loop->epfd);
    }
    if (loop->wakefd > 0) {
        close(loop->wakefd);
    }
    free(loop->slots);
    free(loop);
}

static int grow(struct tg_loop *loop, int fd)
{
    size_t n = loop->n_slots == 0 ? 1024 : loop->n_slots;
    struct fd_slot *p;

    while (n <= (size_t)fd) {
        n *= 2;
    }
    p = realloc(loop->slots, n * sizeof(*p));
    if (p == NULL) {
        return TG_ENOMEM;
    }
    memset(p + loop->n_slots, 0, (n - loop->n_slots) * sizeof(*p));
    loop->slots = p;
    loop->n_slots = n;
    return TG_OK;
}

int tg_loop_watch(struct tg_loop *loop, int fd, uint32_t events, tg_loop_io_fn *fn, void *arg)
{
    struct epoll_event ev = {.events = events};
    struct fd_slot *s;
    int op;

    if (fd < 0) {
        return TG_EINVAL;
    }
    if ((size_t)fd >= loop->n_slots && grow(loop, fd) != TG_OK) {
        return TG_ENOMEM;
    }
    s = &loop->slots[fd];
    if (!s->in_set) {
        s->gen++; /* a new registration: events queued for an earlier one are stale */
    }
    if (s->in_set && s->events == events) {
        s->fn = fn;
        s->arg = arg;
        return TG_OK;
    }
    op = s->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    ev.data.u64 = pack(s->gen, fd);
    if (epoll_ctl(loop->epfd, op, fd, &ev) == -1) {
        /* The fd may have been closed and reopened behind our back. */
        int alt = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if ((errno != EEXIST && errno != ENOENT) || epoll_ctl(loop->epfd, alt, fd, &ev) == -1) {
            tg_log(TG_LOG_ERROR, NULL, "loop.error", "epoll_ctl fd %d: %m", fd);
            return TG_EINTERNAL;
        }
    }
    s->fn = fn;
    s->arg = arg;
    s->events = events;
    s->in_set = true;
    return TG_OK;
}

void tg_loop_unwatch(struct tg_loop *loop, int fd)
{
    struct fd_slot *s;

    if (fd < 0 || (size_t)fd >= loop->n_slots || !loop->slots[fd].in_set) {
        return;
    }
    s = &loop->slots[fd];
    /* Fails harmlessly when fd is already closed: close removed it from the set. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    s->fn = NULL;
    s->arg = NULL;
    s->events = 0;
    s->in_set = false;
    s->gen++;
}

void tg_loop_park(struct tg_loop *loop, int fd)
{
    struct fd_slot *s;

    if (fd < 0 || (size_t)fd >= loop->n_slots) {
        return;
    }
    s = &loop->slots[fd];
    if (!s->tracked || (s->in_set && (s->events & EPOLLOUT))) {
        /* Untracked: a close we never hear of would leave a stale registration. Writable:
         * it would wake us at once. */
        tg_loop_unwatch(loop, fd);
        return;
    }
    /* The registration, and so its generation, stays: a parked fd watched again by the same
     * owner must get the events the kernel reports for it. */
    s->fn = NULL;
    s->arg = NULL;
}

int tg_loop_track(struct tg_loop *loop, int fd)
{
    if (fd < 0) {
        return TG_EINVAL;
    }
    if ((size_t)fd >= loop->n_slots && grow(loop, fd) != TG_OK) {
        return TG_ENOMEM;
    }
    loop->slots[fd] = (struct fd_slot){.gen = loop->slots[fd].gen + 1, .tracked = true};
    return TG_OK;
}

void tg_loop_forget(struct tg_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->n_slots) {
        return;
    }
    /* Closing the fd took it out of the epoll set; a new fd with this number starts clean. */
    loop->slots[fd] = (struct fd_slot){.gen = loop->slots[fd].gen + 1};
}

int tg_loop_add_hook(struct tg_loop *loop, tg_loop_tick_fn *tick, tg_loop_timeout_fn *timeout,
                     void *arg)
{
    if (loop->n_hooks == LOOP_HOOKS_MAX) {
        return TG_ENOMEM;
    }
    loop->hooks[loop->n_hooks++] = (struct hook){tick, timeout, arg};
    return TG_OK;
}

void tg_loop_stop(struct tg_loop *loop)
{
    loop->stop = true;
}

void tg_loop_on_wake(struct tg_loop *loop, tg_loop_tick_fn *fn, void *arg)
{
    loop->wake_fn = fn;
    loop->wake_arg = arg;
}

void tg_loop_wake(struct tg_loop *loop)
{
    uint64_t one = 1;

    /* EAGAIN means a wake is already pending: nothing lost. */
    if (write(loop->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN) {
        tg_log(TG_LOG_ERROR, NULL, "loop.error", "eventfd write: %m");
    }
}

void tg_loop_post(struct tg_loop *loop, struct tg_loop_task *task)
{
    task->next = NULL;
    pthread_mutex_lock(&loop->tasks_lock);
    *loop->tasks_tail = task;
    loop->tasks_tail = &task->next;
    pthread_mutex_unlock(&loop->tasks_lock);
    tg_loop_wake(loop);
}

static int pass_timeout(struct tg_loop *loop)
{
    long best = -1;

    for (size_t i = 0; i < loop->n_hooks; i++) {
        long t = loop->hooks[i].timeout == NULL ? -1 : loop->hooks[i].timeout(loop->hooks[i].arg);
        if (t >= 0 && (best < 0 || t < best)) {
            best = t;
        }
    }
    return best > 60000 ? 60000 : (int)best;
}

static void dispatch(struct tg_loop *loop, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)(ev->data.u64 & 0xffffffffu);
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    struct fd_slot *s;

    if (fd == -1) {
        uint64_t v;
        if (read(loop->wakefd, &v, sizeof(v)) == sizeof(v)) {
            run_tasks(loop);
            if (loop->wake_fn != NULL) {
                loop->wake_fn(loop->wake_arg);
            }
        }
        return;
    }
    if ((size_t)fd >= loop->n_slots) {
        return;
    }
    s = &loop->slots[fd];
    if (s->fn == NULL && s->in_set && s->gen == gen) {
        /* A parked fd woke up (its peer closed it, say): now it costs the syscall. */
        tg_loop_unwatch(loop, fd);
        return;
    }
    /* A callback earlier in this batch may have unwatched or replaced this fd. */
    if (s->fn == NULL || s->gen != gen) {
        return;
    }
    s->fn(s->arg, fd, ev->events);
}

/* Runs every hook's tick once more while one of them asks for a zero timeout: work that is due
 * now (curl's timer, libmicrohttpd's resumed connections) needs no epoll_wait of its own. At
 * most ZERO_RUNS rounds, so that the fds are polled again soon whatever a hook says. Returns the
 * timeout for the next epoll_wait. */
static int settle_zero_timeouts(struct tg_loop *loop)
{
    int t = pass_timeout(loop);

    for (int round = 0; t == 0 && round < ZERO_RUNS && !loop->stop; round++) {
        for (size_t i = 0; i < loop->n_hooks; i++) {
            loop->hooks[i].tick(loop->hooks[i].arg);
        }
        t = pass_timeout(loop);
    }
    return t;
}

int tg_loop_run(struct tg_loop *loop)
{
    struct epoll_event evs[LOOP_EVENTS];

    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, evs, LOOP_EVENTS, settle_zero_timeouts(loop));
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            tg_log(TG_LOG_ERROR, NULL, "loop.error", "epoll_wait: %m");
            return TG_EINTERNAL;
        }
        for (int i = 0; i < n; i++) {
            dispatch(loop, &evs[i]);
        }
        for (size_t i = 0; i < loop->n_hooks; i++) {
            loop->hooks[i].tick(loop->hooks[i].arg);
        }
    }
    return TG_OK;
}
