/* The TLS port's listener: plain HTTP is told so; TLS goes on to libmicrohttpd. */
#include "gateway/acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "gateway/err.h"
#include "gateway/list.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "gateway/trace_context.h"

#define TLS_HANDSHAKE 0x16 /* the content type of the record that opens a TLS handshake */

struct pending {
    struct tg_acceptor *a;
    int fd;
    struct sockaddr_storage sa;
    socklen_t len;
    uint64_t deadline_us;
    struct tg_list link;
};

struct tg_acceptor {
    struct tg_loop *loop;
    int fd; /* listening, -1 once quiesced */
    uint64_t timeout_us;
    unsigned max_pending;
    unsigned n_pending;
    struct tg_list pending;
    tg_acceptor_adopt_fn *adopt;
    void *arg;
};

static void drop(struct pending *p)
{
    tg_loop_unwatch(p->a->loop, p->fd);
    tg_list_remove(&p->link);
    p->a->n_pending--;
    free(p);
}

/* The gateway's error answer, in clear text, then the end of the connection. */
static void answer_plain(struct pending *p)
{
    char body[256];
    char msg[512];
    char trace[37];
    uint8_t raw[16];
    int blen;
    int n;

    tg_trace_new_uuid(raw, trace);
    blen = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"trace_id\":\"%s\"}",
                    tg_strerror(TG_EPLAINTLS), trace);
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 %d Bad Request\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                 tg_err_http_status(TG_EPLAINTLS), blen, body);
    /* One try: a client that does not read its answer gets the close alone. */
    (void)send(p->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(p->fd, SHUT_WR);
    tg_log(TG_LOG_INFO, NULL, "tls.plain_http", "plain HTTP on the TLS port answered %d (trace %s)",
           tg_err_http_status(TG_EPLAINTLS), trace);
}

static void on_first_bytes(void *arg, int fd, uint32_t events)
{
    struct pending *p = arg;
    struct tg_acceptor *a = p->a;
    unsigned char first = 0;
    ssize_t k = recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);

    (void)events;
    if (k == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (k == 1 && first == TLS_HANDSHAKE) {
        struct sockaddr_storage sa = p->sa;
        socklen_t len = p->len;
        drop(p);
        a->adopt(a->arg, fd, (struct sockaddr *)&sa, len);
        return;
    }
    if (k == 1) {
        answer_plain(p);
    }
    drop(p);
    close(fd);
}

static void take(struct tg_acceptor *a, int fd, const struct sockaddr_storage *sa, socklen_t len)
{
    struct pending *p = a->n_pending < a->max_pending ? calloc(1, sizeof(*p)) : NULL;

    if (p == NULL) {
        close(fd);
        return;
    }
    p->a = a;
    p->fd = fd;
    p->sa = *sa;
    p->len = len;
    p->deadline_us = tg_now_us() + a->timeout_us;
    if (tg_loop_watch(a->loop, fd, EPOLLIN | EPOLLRDHUP, on_first_bytes, p) != TG_OK) {
        free(p);
        close(fd);
        return;
    }
    tg_list_push(&a->pending, &p->link);
    a->n_pending++;
}

static void accept_all(struct tg_acceptor *a)
{
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(a->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            return;
        }
        take(a, fd, &sa, len);
    }
}

static void on_listen_ready(void *arg, int fd, uint32_t events)
{
    (void)fd;
    (void)events;
    accept_all(arg);
}

/* Every pending connection gets the same timeout and joins at the tail: the list is in
 * deadline order, so only its head is ever due first. */
static void hook_tick(void *arg)
{
    struct tg_acceptor *a = arg;
    struct tg_list *pos;
    struct tg_list *nxt;
    uint64_t now;

    if (tg_list_is_empty(&a->pending)) {
        return;
    }
    now = tg_now_us();
    TG_LIST_FOREACH_SAFE(pos, nxt, &a->pending)
    {
        struct pending *p = TG_LIST_ENTRY(pos, struct pending, link);
        int fd = p->fd;
        if (now < p->deadline_us) {
            break;
        }
        drop(p);
        close(fd);
    }
}

static long hook_timeout(void *arg)
{
    struct tg_acceptor *a = arg;
    uint64_t next;
    uint64_t now;

    if (tg_list_is_empty(&a->pending)) {
        return -1;
    }
    next = TG_LIST_ENTRY(a->pending.next, struct pending, link)->deadline_us;
    now = tg_now_us();
    return next <= now ? 0 : (long)((next - now + 999) / 1000);
}

static int listen_on(const struct sockaddr *sa, socklen_t len)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        bind(fd, sa, len) == -1 || listen(fd, 4096) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

struct tg_acceptor *tg_acceptor_start(struct tg_loop *loop, const struct sockaddr *sa,
                                      socklen_t len, unsigned timeout_ms, unsigned max_pending,
                                      tg_acceptor_adopt_fn *adopt, void *arg)
{
    struct tg_acceptor *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        return NULL;
    }
    a->loop = loop;
    a->timeout_us = (uint64_t)timeout_ms * 1000u;
    a->max_pending = max_pending > 0 ? max_pending : 1;
    a->adopt = adopt;
    a->arg = arg;
    tg_list_init(&a->pending);
    a->fd = listen_on(sa, len);
    if (a->fd == -1) {
        tg_log(TG_LOG_ERROR, NULL, "server.error", "cannot listen: %m");
        free(a);
        return NULL;
    }
    if (tg_loop_watch(loop, a->fd, EPOLLIN, on_listen_ready, a) != TG_OK ||
        tg_loop_add_hook(loop, hook_tick, hook_timeout, a) != TG_OK) {
        close(a->fd);
        free(a);
        return NULL;
    }
    return a;
}

unsigned tg_acceptor_port(const struct tg_acceptor *a)
{
    struct sockaddr_in6 in6;
    struct sockaddr_in in4;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (a->fd == -1 || getsockname(a->fd, (struct sockaddr *)&ss, &len) == -1) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(&in6, &ss, sizeof(in6));
        return ntohs(in6.sin6_port);
    }
    memcpy(&in4, &ss, sizeof(in4));
    return ntohs(in4.sin_port);
}

void tg_acceptor_quiesce(struct tg_acceptor *a)
{
    if (a == NULL || a->fd == -1) {
        return;
    }
    accept_all(a);
    tg_loop_unwatch(a->loop, a->fd);
    close(a->fd);
    a->fd = -1;
}

void tg_acceptor_stop(struct tg_acceptor *a)
{
    struct tg_list *pos;
    struct tg_list *nxt;

    if (a == NULL) {
        return;
    }
    if (a->fd != -1) {
        tg_loop_unwatch(a->loop, a->fd);
        close(a->fd);
    }
    TG_LIST_FOREACH_SAFE(pos, nxt, &a->pending)
    {
        struct pending *p = TG_LIST_ENTRY(pos, struct pending, link);
        int fd = p->fd;
        drop(p);
        close(fd);
    }
    free(a);
}
