#include "tests/support/stub/stub.h"

/* tg-stub: one thread per connection: read a request, answer it, until the connection ends. */

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The first request decides whether the connection is counted and recorded. */
void decide(struct conn *c, bool counted)
{
    if (c->decided) {
        return;
    }
    c->decided = true;
    c->counted = counted;
    if (counted) {
        atomic_fetch_add(&stub.opened, 1);
        atomic_fetch_add(&stub.open, 1);
        record_conn_event(c, "open", c->t_open);
    }
}

/* Answers one request; returns true to wait for another on this connection. */
bool serve(struct conn *c, const struct request *r)
{
    struct params pa = {0};
    int sent = 0;
    bool keep = false;

    c->requests++;
    if (c->svc == SVC_COLLECTOR) {
        return collector_serve(c, r);
    }
    if (c->counted && !is_stub_target(r->target)) {
        atomic_fetch_add(&stub.requests, 1);
        record_request(c, r);
    }
    if (strncmp(r->target, "/_stub/behave", 13) == 0 &&
        (r->target[13] == '\0' || r->target[13] == '?')) {
        struct reply rep = {.status = 200, .ctype = "application/json", .body = "{}", .len = 2};
        rep.status = set_behave(c->lidx, r->target) ? 200 : 500;
        keep = send_reply(c, is_head(r), NULL, &rep, !r->keep_alive) && r->keep_alive;
        sent = rep.status;
    } else if (!parse_params_on(c->lidx, r->target, &pa)) {
        struct reply rep = {.status = 400, .ctype = "application/json"};
        rep.body = "{\"error\":\"bad test parameter\"}";
        rep.len = strlen(rep.body);
        keep = send_reply(c, is_head(r), NULL, &rep, !r->keep_alive) && r->keep_alive;
        sent = 400;
    } else if (pa.delay_ms <= 0 || !wait_peer_close(c, pa.delay_ms, "waiting")) {
        keep = act(c, r, &pa, &sent);
    }
    log_request(c, r, sent);
    free(pa.qbuf);
    free(pa.file_body);
    return keep;
}

/* Answers a request we could not read, then the connection closes. */
void refuse(struct conn *c, enum rd why)
{
    struct reply rep = {.ctype = "application/json", .body = "{\"error\":\"bad request\"}"};

    rep.status = why == RD_TOOBIG ? 413 : why == RD_HEADBIG ? 431 : 400;
    if (rep.status != 400) {
        rep.body = rep.status == 413 ? "{\"error\":\"body too large\"}"
                                     : "{\"error\":\"headers too large\"}";
    }
    rep.len = strlen(rep.body);
    send_reply(c, false, NULL, &rep, true);
}

static void conn_finish(struct conn *c)
{
    pthread_mutex_lock(&stub.conn_lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        stub.conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&stub.conn_lock);
    close(c->fd);    /* after SO_LINGER {1,0} this sends RST */
    decide(c, true); /* a connection that never sent a request is still recorded */
    if (c->counted) {
        record_conn_event(c, "close", now_us());
        atomic_fetch_sub(&stub.open, 1);
    }
    free(c->in);
    free(c);
    pthread_mutex_lock(&stub.conn_lock);
    stub.live--;
    pthread_cond_signal(&stub.conn_gone);
    pthread_mutex_unlock(&stub.conn_lock);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;

    for (;;) {
        struct request r = {0};
        enum rd rc = read_request(c, &r);
        bool keep = false;
        if (rc == RD_OK) {
            keep = serve(c, &r);
        } else if (rc != RD_GONE) {
            refuse(c, rc);
        }
        request_cleanup(&r);
        if (!keep) {
            break;
        }
    }
    conn_finish(c);
    return NULL;
}

void conn_start(int fd, size_t lidx)
{
    struct conn *c = calloc(1, sizeof(*c));
    pthread_t tid;
    int one = 1;

    if (c == NULL || (c->in = malloc(4096)) == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->in_cap = 4096;
    c->fd = fd;
    c->svc = stub.ls[lidx].svc;
    c->lidx = lidx;
    c->t_open = now_us();
    c->id = atomic_fetch_add(&stub.next_conn_id, 1) + 1;
    c->close_by = "stub";
    c->close_while = "idle";
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* trickled bytes go at once */
    pthread_mutex_lock(&stub.conn_lock);
    c->next = stub.conns;
    if (stub.conns != NULL) {
        stub.conns->prev = c;
    }
    stub.conns = c;
    stub.live++;
    pthread_mutex_unlock(&stub.conn_lock);
    if (pthread_create(&tid, &stub.attr, conn_main, c) != 0) {
        fprintf(stderr, "tg-stub: cannot start a connection thread\n");
        conn_finish(c);
    }
}

/* Wakes every connection thread (shutdown() ends blocking recv/send/poll) and waits up to
 * 3 s for them to finish, so the process exits with nothing leaked. */
void stop_connections(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    pthread_mutex_lock(&stub.conn_lock);
    for (struct conn *c = stub.conns; c != NULL; c = c->next) {
        shutdown(c->fd, SHUT_RDWR);
    }
    while (stub.live > 0 && pthread_cond_timedwait(&stub.conn_gone, &stub.conn_lock, &until) == 0) {
    }
    pthread_mutex_unlock(&stub.conn_lock);
}
