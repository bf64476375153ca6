#ifndef TG_GATEWAY_LOOP_H
#define TG_GATEWAY_LOOP_H

#include <stdint.h>

/* One worker's event loop: one epoll set, a table from fd to callback, and hooks that run
 * once per pass. epoll_data carries (generation, fd), never a pointer: fds are reused at once
 * after close, and a stale event for a reused fd is dropped by its generation. */
struct tg_loop;

/* Called when fd is ready; events are EPOLL* bits. */
typedef void tg_loop_io_fn(void *arg, int fd, uint32_t events);
/* Called once per pass after the events were dispatched. */
typedef void tg_loop_tick_fn(void *arg);
/* Milliseconds until the hook needs a pass, or -1 for no limit. */
typedef long tg_loop_timeout_fn(void *arg);

/* Work another thread hands to a loop (the spool thread telling a worker that a submission is
 * on disk). Intrusive: the poster embeds it in an object of its own, which must stay alive
 * until fn has run. */
struct tg_loop_task;
typedef void tg_loop_task_fn(struct tg_loop_task *task);
struct tg_loop_task {
    struct tg_loop_task *next; /* the loop's, while queued */
    tg_loop_task_fn *fn;       /* runs once, on the loop's thread */
};

/* A new loop or NULL (out of memory, or epoll_create1 failed: logged). */
struct tg_loop *tg_loop_new(void);

/* Frees the loop. Watched fds are not closed. Tasks still queued run first (on the calling
 * thread), so their owners can release what they hold. NULL is a no-op. */
void tg_loop_free(struct tg_loop *loop);

/* Watches fd for events (EPOLLIN, EPOLLOUT, EPOLLRDHUP...), replacing an earlier watch of the
 * same fd. fn(arg, fd, events) runs on this loop's thread. TG_OK or a negative tg_err. */
int tg_loop_watch(struct tg_loop *loop, int fd, uint32_t events, tg_loop_io_fn *fn, void *arg);

/* Stops watching fd; pending events for it in the current pass are dropped. Safe on an fd that
 * is not watched or already closed. */
void tg_loop_unwatch(struct tg_loop *loop, int fd);

/* Stops calling back for fd but leaves it in the epoll set, so that watching it again with
 * the same events costs no system call (curl drops and re-adds a kept-alive connection on
 * every transfer). If it wakes while parked, it is unwatched then. The owner must call
 * tg_loop_forget when it closes fd. */
void tg_loop_park(struct tg_loop *loop, int fd);

/* fd was just opened by an owner that will call tg_loop_forget when it closes it: it may be
 * parked. TG_OK or TG_ENOMEM. */
int tg_loop_track(struct tg_loop *loop, int fd);

/* fd was closed: forget it without a system call. */
void tg_loop_forget(struct tg_loop *loop, int fd);

/* Adds a per-pass hook; hooks run in the order added. TG_OK or TG_ENOMEM. */
int tg_loop_add_hook(struct tg_loop *loop, tg_loop_tick_fn *tick, tg_loop_timeout_fn *timeout,
                     void *arg);

/* Runs passes until tg_loop_stop. Returns TG_OK, or a negative tg_err when epoll fails. */
int tg_loop_run(struct tg_loop *loop);

/* Ends tg_loop_run after the current pass. Loop thread only; other threads use tg_loop_wake
 * with a callback that calls it. */
void tg_loop_stop(struct tg_loop *loop);

/* Sets the callback run on the loop thread after tg_loop_wake. */
void tg_loop_on_wake(struct tg_loop *loop, tg_loop_tick_fn *fn, void *arg);

/* Wakes the loop from any thread; its wake callback runs in the next pass. */
void tg_loop_wake(struct tg_loop *loop);

/* Queues task from any thread and wakes the loop: task->fn(task) runs on the loop's thread in a
 * coming pass, tasks in the order they were posted, before the wake callback. */
void tg_loop_post(struct tg_loop *loop, struct tg_loop_task *task);

#endif
