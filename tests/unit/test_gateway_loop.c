/* Unit tests for gateway/loop.c with real pipes: callbacks, the generation that drops a stale
 * event for a reused fd number, and park/track/forget as loop.h documents them. Each test runs
 * the loop for a fixed number of passes; a pass never blocks (a hook asks for a 0 ms wait) and
 * the tick hook runs the test's next step between passes. Whether an fd is in the epoll set is
 * read from /proc/self/fdinfo of the loop's epoll fd. */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/loop.h"

TestSuite(loop, .timeout = 10);

/* ---- helpers ---- */

/* Calls of count_cb for one watch. */
struct calls {
    int n;
    int fd;
    uint32_t events;
};

/* Counts the call in the struct calls at arg and reads what fd holds, so that a level-triggered
 * fd does not report the same bytes again in the next pass. */
static void count_cb(void *arg, int fd, uint32_t events)
{
    struct calls *c = arg;
    char buf[64];

    c->n++;
    c->fd = fd;
    c->events = events;
    (void)!read(fd, buf, sizeof(buf));
}

/* A loop and the test's state. tg_loop_stop ends tg_loop_run for good, so a test runs its loop
 * once, for max_passes passes, and step(r) runs between passes (not after the last). */
struct run {
    struct tg_loop *loop;
    int epfd; /* the loop's epoll fd */
    int passes;
    int max_passes;
    void (*step)(struct run *r);
    void *arg; /* the test's state, for step */
};

static void on_tick(void *arg)
{
    struct run *r = arg;

    r->passes++;
    if (r->passes >= r->max_passes) {
        tg_loop_stop(r->loop);
    } else if (r->step != NULL) {
        r->step(r);
    }
}

/* Every pass polls, waiting at most 1 ms. (A hook that asks for 0 gets its ticks again without
 * a poll in between: tg_loop_run settles zero timeouts first.) */
static long no_wait(void *arg)
{
    (void)arg;
    return 1;
}

/* True when fd is an open epoll fd. */
static bool is_epoll_fd(int fd)
{
    char link[64];
    char target[128];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        return false;
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventpoll]") == 0;
}

/* A new loop in r with the hooks that count and end passes, and its epoll fd: the one epoll fd
 * that tg_loop_new opened. */
static void loop_start(struct run *r)
{
    bool was_epoll[1024];

    memset(r, 0, sizeof(*r));
    for (int fd = 0; fd < 1024; fd++) {
        was_epoll[fd] = is_epoll_fd(fd);
    }
    r->loop = tg_loop_new();
    cr_assert(not(zero(ptr, r->loop)));
    r->epfd = -1;
    for (int fd = 0; fd < 1024; fd++) {
        if (!was_epoll[fd] && is_epoll_fd(fd)) {
            cr_assert(eq(int, r->epfd, -1), "tg_loop_new opened two epoll fds");
            r->epfd = fd;
        }
    }
    cr_assert(ge(int, r->epfd, 0), "the loop's epoll fd was not found");
    cr_assert(eq(int, tg_loop_add_hook(r->loop, on_tick, no_wait, r), TG_OK));
}

/* Runs the loop for passes passes, calling step between them. */
static void loop_run(struct run *r, int passes, void (*step)(struct run *r))
{
    r->passes = 0;
    r->max_passes = passes;
    r->step = step;
    cr_assert(eq(int, tg_loop_run(r->loop), TG_OK));
    cr_assert(eq(int, r->passes, passes));
}

/* How many registrations for fd number fd the epoll set epfd holds (more than one when the
 * files behind them differ). */
static int registrations(int epfd, int fd)
{
    char path[64];
    char line[256];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
    f = fopen(path, "r");
    cr_assert(not(zero(ptr, f)), "cannot read %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *end = NULL;

        n += strncmp(line, "tfd:", 4) == 0 && strtol(line + 4, &end, 10) == fd && end != line + 4;
    }
    fclose(f);
    return n;
}

struct pipe_ends {
    int r;
    int w;
};

static struct pipe_ends make_pipe(void)
{
    int fds[2];

    cr_assert(eq(int, pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0));
    return (struct pipe_ends){fds[0], fds[1]};
}

/* Makes the read end of p readable. */
static void fill(struct pipe_ends p)
{
    cr_assert(eq(sz, (size_t)write(p.w, "x", 1), 1));
}

/* A new pipe whose read end has the number fd, which must be closed: the kernel hands out the
 * lowest free number, which is fd in most tests, and dup3 makes sure. */
static struct pipe_ends reopen_as(int fd)
{
    struct pipe_ends p = make_pipe();

    if (p.w == fd) {
        int w = fcntl(p.w, F_DUPFD_CLOEXEC, fd + 1);

        cr_assert(ge(int, w, 0));
        close(p.w);
        p.w = w;
    }
    if (p.r != fd) {
        cr_assert(eq(int, dup3(p.r, fd, O_CLOEXEC), fd));
        close(p.r);
        p.r = fd;
    }
    return p;
}

static void close_pipe(struct pipe_ends p)
{
    close(p.r);
    close(p.w);
}

/* ---- callbacks ---- */

Test(loop, a_ready_fd_calls_its_callback_with_fd_and_events)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();

    loop_start(&r);
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &c), TG_OK));
    fill(p);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, c.n, 1));
    cr_expect(eq(int, c.fd, p.r));
    cr_expect(eq(u32, c.events & EPOLLIN, EPOLLIN));
    tg_loop_free(r.loop);
    close_pipe(p);
}

Test(loop, a_quiet_fd_calls_nothing)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();

    loop_start(&r);
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &c), TG_OK));
    loop_run(&r, 3, NULL);
    cr_expect(eq(int, c.n, 0));
    tg_loop_free(r.loop);
    close_pipe(p);
}

Test(loop, watch_again_replaces_the_callback)
{
    struct run r;
    struct calls first = {0};
    struct calls second = {0};
    struct pipe_ends p = make_pipe();

    loop_start(&r);
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &first), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &second), TG_OK));
    fill(p);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, first.n, 0));
    cr_expect(eq(int, second.n, 1));
    tg_loop_free(r.loop);
    close_pipe(p);
}

/* Two fds ready in the same pass; the callback that runs first unwatches the other one. */
struct unwatch_other {
    struct tg_loop *loop;
    int fds[2];
    int calls;
};

static void unwatch_other_cb(void *arg, int fd, uint32_t events)
{
    struct unwatch_other *u = arg;

    (void)events;
    u->calls++;
    tg_loop_unwatch(u->loop, fd == u->fds[0] ? u->fds[1] : u->fds[0]);
}

Test(loop, unwatch_drops_an_event_already_returned_in_this_pass)
{
    struct run r;
    struct pipe_ends a = make_pipe();
    struct pipe_ends b = make_pipe();
    struct unwatch_other u = {.fds = {a.r, b.r}};

    loop_start(&r);
    u.loop = r.loop;
    cr_assert(eq(int, tg_loop_watch(r.loop, a.r, EPOLLIN, unwatch_other_cb, &u), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, b.r, EPOLLIN, unwatch_other_cb, &u), TG_OK));
    fill(a);
    fill(b);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, u.calls, 1), "the unwatched fd's event of the same pass was delivered");
    tg_loop_free(r.loop);
    close_pipe(a);
    close_pipe(b);
}

Test(loop, calls_on_fds_not_watched_are_harmless)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();
    int closed = p.r;

    loop_start(&r);
    cr_assert(eq(int, tg_loop_watch(r.loop, closed, EPOLLIN, count_cb, &c), TG_OK));
    close(closed);
    cr_expect(eq(int, tg_loop_watch(r.loop, -1, EPOLLIN, count_cb, NULL), TG_EINVAL));
    cr_expect(eq(int, tg_loop_track(r.loop, -1), TG_EINVAL));
    tg_loop_unwatch(r.loop, -1);
    tg_loop_unwatch(r.loop, 100000);
    tg_loop_unwatch(r.loop, closed);
    tg_loop_park(r.loop, -1);
    tg_loop_park(r.loop, 100000);
    tg_loop_forget(r.loop, -1);
    tg_loop_forget(r.loop, 100000);
    cr_expect(eq(int, registrations(r.epfd, closed), 0));
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, c.n, 0));
    tg_loop_free(r.loop);
    close(p.w);
}

static void stop_on_wake(void *arg)
{
    struct tg_loop *loop = arg;

    tg_loop_stop(loop);
}

static void *wake_later(void *arg)
{
    usleep(20000);
    tg_loop_wake(arg);
    return NULL;
}

Test(loop, wake_from_another_thread_runs_the_wake_callback)
{
    struct tg_loop *loop = tg_loop_new();
    pthread_t t;

    /* No hook: the pass waits in epoll_wait until the wake. */
    cr_assert(not(zero(ptr, loop)));
    tg_loop_on_wake(loop, stop_on_wake, loop);
    cr_assert(eq(int, pthread_create(&t, NULL, wake_later, loop), 0));
    cr_expect(eq(int, tg_loop_run(loop), TG_OK));
    cr_assert(eq(int, pthread_join(t, NULL), 0));
    tg_loop_free(loop);
}

/* ---- tasks posted from other threads ---- */

/* A posted task that records the order it ran in and on which thread. */
struct ordered_task {
    struct tg_loop_task task; /* first: the callback gets this pointer */
    int *next_rank;
    int rank; /* 0: not run */
    pthread_t ran_on;
    struct tg_loop *stop; /* stop this loop when run, or NULL */
};

static void ordered_run(struct tg_loop_task *task)
{
    struct ordered_task *o = (struct ordered_task *)(void *)task;

    o->rank = ++*o->next_rank;
    o->ran_on = pthread_self();
    if (o->stop != NULL) {
        tg_loop_stop(o->stop);
    }
}

struct poster {
    struct tg_loop *loop;
    struct ordered_task *tasks;
    int n;
};

static void *post_all(void *arg)
{
    struct poster *p = arg;

    usleep(20000);
    for (int i = 0; i < p->n; i++) {
        tg_loop_post(p->loop, &p->tasks[i].task);
    }
    return NULL;
}

Test(loop, tasks_posted_from_another_thread_run_on_the_loop_in_order)
{
    struct tg_loop *loop = tg_loop_new();
    struct ordered_task tasks[3];
    struct poster p = {loop, tasks, 3};
    int next_rank = 0;
    pthread_t t;

    cr_assert(not(zero(ptr, loop)));
    for (int i = 0; i < 3; i++) {
        tasks[i] = (struct ordered_task){.task.fn = ordered_run, .next_rank = &next_rank};
    }
    tasks[2].stop = loop; /* the last one ends the run: all three ran by then */
    cr_assert(eq(int, pthread_create(&t, NULL, post_all, &p), 0));
    cr_expect(eq(int, tg_loop_run(loop), TG_OK));
    cr_assert(eq(int, pthread_join(t, NULL), 0));
    for (int i = 0; i < 3; i++) {
        cr_expect(eq(int, tasks[i].rank, i + 1), "task %d ran as %d", i, tasks[i].rank);
        cr_expect(pthread_equal(tasks[i].ran_on, pthread_self()), "task %d ran elsewhere", i);
    }
    tg_loop_free(loop);
}

Test(loop, tasks_still_queued_run_when_the_loop_is_freed)
{
    struct tg_loop *loop = tg_loop_new();
    struct ordered_task a = {.task.fn = ordered_run};
    struct ordered_task b = {.task.fn = ordered_run};
    int next_rank = 0;

    cr_assert(not(zero(ptr, loop)));
    a.next_rank = &next_rank;
    b.next_rank = &next_rank;
    tg_loop_post(loop, &a.task);
    tg_loop_post(loop, &b.task);
    cr_expect(eq(int, a.rank, 0), "a task ran before its loop did");
    tg_loop_free(loop);
    cr_expect(eq(int, a.rank, 1));
    cr_expect(eq(int, b.rank, 2));
}

/* ---- a reused fd number: the generation drops the old registration's events ---- */

/* Two fds, both ready when the pass starts, so that the pass holds an event for each. The
 * callback that runs first closes the other fd and opens a new pipe under its number, readable
 * too and watched with new_calls: the event the pass still holds for the closed fd is stale and
 * must reach neither the old callback nor the new one. The next pass reports the new pipe. With
 * forget the fds are tracked and closed as curl closes its sockets (close, then
 * tg_loop_forget); without, the watch is removed first (tg_loop_unwatch, then close). */
struct swap {
    struct tg_loop *loop;
    int fds[2];
    bool forget;
    int swaps;
    int swaps_after_first_pass;
    int new_calls_after_first_pass;
    struct pipe_ends reopened;
    struct calls new_calls;
};

static void swap_cb(void *arg, int fd, uint32_t events)
{
    struct swap *s = arg;
    int other = fd == s->fds[0] ? s->fds[1] : s->fds[0];
    char buf[8];

    (void)events;
    (void)!read(fd, buf, sizeof(buf));
    if (++s->swaps > 1) {
        return; /* the closed fd's stale event came here: counted, not acted on */
    }
    if (!s->forget) {
        tg_loop_unwatch(s->loop, other);
    }
    close(other);
    if (s->forget) {
        tg_loop_forget(s->loop, other);
    }
    s->reopened = reopen_as(other);
    fill(s->reopened);
    if (s->forget) {
        cr_assert(eq(int, tg_loop_track(s->loop, other), TG_OK));
    }
    cr_assert(eq(int, tg_loop_watch(s->loop, other, EPOLLIN, count_cb, &s->new_calls), TG_OK));
}

static void after_swap_pass(struct run *r)
{
    struct swap *s = r->arg;

    s->swaps_after_first_pass = s->swaps;
    s->new_calls_after_first_pass = s->new_calls.n;
}

static void expect_stale_event_dropped(bool forget)
{
    struct run r;
    struct pipe_ends a = make_pipe();
    struct pipe_ends b = make_pipe();
    struct swap s = {.fds = {a.r, b.r}, .forget = forget, .reopened = {-1, -1}};

    loop_start(&r);
    r.arg = &s;
    s.loop = r.loop;
    if (forget) {
        cr_assert(eq(int, tg_loop_track(r.loop, a.r), TG_OK));
        cr_assert(eq(int, tg_loop_track(r.loop, b.r), TG_OK));
    }
    cr_assert(eq(int, tg_loop_watch(r.loop, a.r, EPOLLIN, swap_cb, &s), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, b.r, EPOLLIN, swap_cb, &s), TG_OK));
    fill(a);
    fill(b);
    loop_run(&r, 2, after_swap_pass);
    cr_expect(eq(int, s.swaps_after_first_pass, 1),
              "the closed fd's stale event reached its old callback");
    cr_expect(eq(int, s.new_calls_after_first_pass, 0),
              "the closed fd's stale event reached the new watch of its number");
    cr_expect(eq(int, s.new_calls.n, 1), "the new watch missed its own event");
    cr_expect(eq(int, s.swaps, 1));
    tg_loop_free(r.loop);
    close_pipe(s.reopened);
    close(a.w);
    close(b.w);
    close(s.fds[0] == s.reopened.r ? s.fds[1] : s.fds[0]);
}

Test(loop, unwatched_then_reused_fd_gets_no_stale_event)
{
    expect_stale_event_dropped(false);
}

Test(loop, forgotten_then_reused_fd_gets_no_stale_event)
{
    expect_stale_event_dropped(true);
}

/* A registration that outlives its fd number: the file behind fd is still open through a
 * duplicate when fd is closed, so closing does not take it out of the epoll set, and
 * tg_loop_unwatch on the closed number cannot either. Its events keep coming, with the old
 * generation, while a new pipe under the same number is watched. */
struct outlived {
    struct pipe_ends reopened;
    struct calls old_calls;
    struct calls new_calls;
    int new_calls_before_fill;
};

static void fill_reopened(struct run *r)
{
    struct outlived *o = r->arg;

    if (r->passes == 2) {
        o->new_calls_before_fill = o->new_calls.n;
        fill(o->reopened);
    }
}

Test(loop, events_of_a_registration_that_outlived_its_fd_are_dropped)
{
    struct run r;
    struct pipe_ends p = make_pipe();
    struct outlived o = {0};
    int fd = p.r;
    int dup_fd;

    loop_start(&r);
    r.arg = &o;
    cr_assert(eq(int, tg_loop_watch(r.loop, fd, EPOLLIN, count_cb, &o.old_calls), TG_OK));
    dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    cr_assert(ge(int, dup_fd, 0));
    close(fd);
    tg_loop_unwatch(r.loop, fd);
    o.reopened = reopen_as(fd);
    cr_assert(eq(int, tg_loop_watch(r.loop, fd, EPOLLIN, count_cb, &o.new_calls), TG_OK));
    /* The old file turns readable; the new pipe stays empty for two passes. */
    fill(p);
    cr_assert(eq(int, registrations(r.epfd, fd), 2), "the old registration is gone: no test");
    loop_run(&r, 3, fill_reopened);
    cr_expect(eq(int, o.old_calls.n, 0), "the closed watch was called");
    cr_expect(eq(int, o.new_calls_before_fill, 0), "the old file's events reached the new watch");
    cr_expect(eq(int, o.new_calls.n, 1), "the new watch missed its own event");
    tg_loop_free(r.loop);
    close(dup_fd);
    close(p.w);
    close_pipe(o.reopened);
}

/* ---- park, track, forget ---- */

Test(loop, parked_fd_stays_registered_and_a_new_watch_gets_its_events)
{
    struct run r;
    struct calls first = {0};
    struct calls second = {0};
    struct pipe_ends p = make_pipe();

    loop_start(&r);
    cr_assert(eq(int, tg_loop_track(r.loop, p.r), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &first), TG_OK));
    tg_loop_park(r.loop, p.r);
    cr_expect(eq(int, registrations(r.epfd, p.r), 1), "a parked fd leaves the epoll set");
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &second), TG_OK));
    fill(p);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, first.n, 0));
    cr_expect(eq(int, second.n, 1));
    tg_loop_free(r.loop);
    close_pipe(p);
}

Test(loop, parked_fd_that_wakes_is_unwatched_without_a_call)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();

    loop_start(&r);
    cr_assert(eq(int, tg_loop_track(r.loop, p.r), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &c), TG_OK));
    tg_loop_park(r.loop, p.r);
    fill(p);
    loop_run(&r, 2, NULL);
    cr_expect(eq(int, c.n, 0));
    cr_expect(eq(int, registrations(r.epfd, p.r), 0), "a parked fd that woke stays in the set");
    tg_loop_free(r.loop);
    close_pipe(p);
}

Test(loop, park_of_an_untracked_fd_unwatches_it)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();

    /* Its close would go unreported: a registration left behind could outlive it. */
    loop_start(&r);
    cr_assert(eq(int, tg_loop_watch(r.loop, p.r, EPOLLIN, count_cb, &c), TG_OK));
    tg_loop_park(r.loop, p.r);
    cr_expect(eq(int, registrations(r.epfd, p.r), 0));
    fill(p);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, c.n, 0));
    tg_loop_free(r.loop);
    close_pipe(p);
}

Test(loop, park_of_a_writable_watch_unwatches_it)
{
    struct run r;
    struct calls c = {0};
    struct pipe_ends p = make_pipe();

    /* A writable fd would wake every pass. */
    loop_start(&r);
    cr_assert(eq(int, tg_loop_track(r.loop, p.w), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, p.w, EPOLLOUT, count_cb, &c), TG_OK));
    tg_loop_park(r.loop, p.w);
    cr_expect(eq(int, registrations(r.epfd, p.w), 0));
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, c.n, 0));
    tg_loop_free(r.loop);
    close_pipe(p);
}

/* A tracked fd parked, closed and forgotten, as curl's kept-alive sockets end; then a new fd
 * with the same number, tracked again or not, watched for the same events. It must be added to
 * the epoll set, not taken for the parked registration that the close removed. */
static void expect_forgotten_number_watched_afresh(bool track_again)
{
    struct run r;
    struct calls old_calls = {0};
    struct calls new_calls = {0};
    struct pipe_ends p = make_pipe();
    struct pipe_ends q;
    int fd = p.r;

    loop_start(&r);
    cr_assert(eq(int, tg_loop_track(r.loop, fd), TG_OK));
    cr_assert(eq(int, tg_loop_watch(r.loop, fd, EPOLLIN, count_cb, &old_calls), TG_OK));
    tg_loop_park(r.loop, fd);
    close(fd);
    tg_loop_forget(r.loop, fd);
    cr_expect(eq(int, registrations(r.epfd, fd), 0));
    q = reopen_as(fd);
    if (track_again) {
        cr_assert(eq(int, tg_loop_track(r.loop, fd), TG_OK));
    }
    cr_assert(eq(int, tg_loop_watch(r.loop, fd, EPOLLIN, count_cb, &new_calls), TG_OK));
    cr_expect(eq(int, registrations(r.epfd, fd), 1), "the new fd is not in the epoll set");
    fill(q);
    loop_run(&r, 1, NULL);
    cr_expect(eq(int, old_calls.n, 0));
    cr_expect(eq(int, new_calls.n, 1));
    tg_loop_free(r.loop);
    close(p.w);
    close_pipe(q);
}

Test(loop, forgotten_fd_number_tracked_again_is_watched_afresh)
{
    expect_forgotten_number_watched_afresh(true);
}

Test(loop, forgotten_fd_number_is_watched_afresh_by_an_untracked_owner)
{
    expect_forgotten_number_watched_afresh(false);
}
