/* The floor: libmicrohttpd and libcurl alone, wired the way tracegate wires them (one thread,
 * external epoll, suspend/resume, curl multi on the socket API) and doing nothing else: no
 * logs, no trace ids, no header forwarding, no deadlines, easy handles configured once and
 * reused. What the two libraries cost per proxied request; the bench prints tracegate's
 * distance to it. Not part of the product.
 *   floor PORT UPSTREAM_URL [POOL_BYTES]      (GET only, the answer's body and status) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <curl/curl.h>
#include <microhttpd.h>

struct call {
    struct MHD_Connection *conn;
    CURL *easy;
    char *body;
    size_t len, cap;
    long status;
    int state; /* 0 new, 1 waiting, 2 answered */
};

static CURLM *multi;
static int epfd;
static long long curl_due_us; /* 0: no curl timer armed */
static CURL *idle[1024];
static int n_idle;
static const char *upstream;
static int resumed;                 /* a connection was resumed: MHD must run */
static unsigned char in_set[65536]; /* curl socket registered in epfd (1), and wanted by curl (2) */

static size_t on_body(char *d, size_t sz, size_t n, void *arg)
{
    struct call *c = arg;
    size_t len = sz * n;

    if (c->len + len > c->cap) {
        c->cap = (c->len + len) * 2;
        c->body = realloc(c->body, c->cap);
    }
    memcpy(c->body + c->len, d, len);
    c->len += len;
    return len;
}

static CURL *easy_get(void)
{
    CURL *e;

    if (n_idle > 0) {
        return idle[--n_idle];
    }
    e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, upstream);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    return e;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **ctx)
{
    struct call *c = *ctx;
    struct MHD_Response *r;
    enum MHD_Result ok;

    (void)cls, (void)url, (void)method, (void)version, (void)data, (void)size;
    if (c == NULL) {
        *ctx = c = calloc(1, sizeof(*c));
        c->conn = conn;
        return MHD_YES;
    }
    if (c->state == 0) {
        c->state = 1;
        c->easy = easy_get();
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
        curl_multi_add_handle(multi, c->easy);
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(c->len, c->body, MHD_RESPMEM_MUST_FREE);
    c->body = NULL;
    ok = MHD_queue_response(conn, (unsigned)c->status, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx,
                    enum MHD_RequestTerminationCode t)
{
    struct call *c = *ctx;

    (void)cls, (void)conn, (void)t;
    if (c != NULL) {
        free(c->body);
        free(c);
        *ctx = NULL;
    }
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0),
                             .data.fd = s};

    (void)e, (void)u, (void)sp;
    if (what == CURL_POLL_REMOVE) {
        /* Parked, not removed: a kept-alive connection is watched again by the next transfer, and
         * a close removes it from the set by itself. */
        in_set[s] = 1;
        return 0;
    }
    /* A parked fd that curl closed left the set by itself, and its number may be back. */
    if (!in_set[s] || epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) != 0) {
        epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
    }
    in_set[s] = 2;
    return 0;
}

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int on_timer(CURLM *m, long ms, void *u)
{
    (void)m, (void)u;
    curl_due_us = ms < 0 ? 0 : now_us() + ms * 1000LL + 1;
    return 0;
}

static void finished(void)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        struct call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
        if (msg->data.result != CURLE_OK) {
            c->status = 502;
        }
        curl_multi_remove_handle(multi, c->easy);
        idle[n_idle++] = c->easy; /* kept configured: only the private data changes */
        c->state = 2;
        MHD_resume_connection(c->conn);
        resumed = 1;
    }
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *di;
    struct epoll_event ev = {.events = EPOLLIN}, evs[64];
    int mhd_fd, running;

    if (argc < 3) {
        fprintf(stderr, "usage: floor PORT UPSTREAM_URL [POOL_BYTES]\n");
        return 2;
    }
    upstream = argv[2];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
    d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)atoi(argv[1]), NULL,
                         NULL, on_access, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)(argc > 3 ? atoi(argv[3]) : 8192), MHD_OPTION_END);
    if (d == NULL) {
        return 1;
    }
    di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    mhd_fd = di->epoll_fd;
    epfd = epoll_create1(0);
    ev.data.fd = mhd_fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, mhd_fd, &ev);
    for (;;) {
        MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
        long long now = now_us();
        long t = MHD_get_timeout(d, &mhd_ms) == MHD_YES ? (long)mhd_ms : -1;
        long curl_ms = curl_due_us == 0     ? -1
                       : curl_due_us <= now ? 0
                                            : (long)((curl_due_us - now + 999) / 1000);
        int n, mhd_ready = 0;

        if (curl_ms >= 0 && (t < 0 || curl_ms < t)) {
            t = curl_ms;
        }
        n = epoll_wait(epfd, evs, 64, resumed ? 0 : (int)t);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == mhd_fd) {
                mhd_ready = 1;
            } else if (in_set[evs[i].data.fd] == 1) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, evs[i].data.fd, NULL); /* parked and woke: drop it */
                in_set[evs[i].data.fd] = 0;
            } else {
                int f = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0);
                curl_multi_socket_action(multi, evs[i].data.fd, f, &running);
            }
        }
        if (curl_due_us != 0 && now_us() >= curl_due_us) {
            curl_due_us = 0;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        finished();
        /* MHD_run costs a system call even with nothing to do. */
        if (mhd_ready || resumed || t == 0) {
            resumed = 0;
            MHD_run(d);
        }
    }
}
