#include "gateway/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/readtimer.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "gateway/upstream.h"

/* A chunked body is read past its limit (to answer 413 cleanly) up to this many bytes more;
 * beyond, the connection is dropped. */
#define BODY_DISCARD_MAX (4u << 20)

struct tg_server {
    struct MHD_Daemon *daemon;
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_worker_stats *stats;
    struct tg_server_app app;
    struct tg_conf *conf; /* one reference: what new requests use */
    struct tg_req *live;  /* requests alive, newest first */
    unsigned n_live;
    int listen_fd;
    bool quiesced;
    bool tls;
    struct tg_readtimer reads; /* connections owing a complete request */
    bool mhd_ready;            /* MHD's epoll fd was ready in this pass */
    bool resumed;              /* a connection was resumed: MHD must run */
};

static void req_link(struct tg_server *srv, struct tg_req *req)
{
    req->live_next = srv->live;
    if (srv->live != NULL) {
        srv->live->live_prev = req;
    }
    srv->live = req;
    srv->n_live++;
    TG_STAT_ADD(srv->stats, live, 1);
}

static void req_unlink(struct tg_server *srv, struct tg_req *req)
{
    if (req->live_prev != NULL) {
        req->live_prev->live_next = req->live_next;
    } else {
        srv->live = req->live_next;
    }
    if (req->live_next != NULL) {
        req->live_next->live_prev = req->live_prev;
    }
    req->live_prev = req->live_next = NULL;
    srv->n_live--;
    TG_STAT_ADD(srv->stats, live, -1);
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci == NULL ? NULL : ci->client_addr;

    out[0] = '\0';
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
    }
}

/* Runs once per request, before the URI is decoded: the request object is born here so the
 * raw request-target (what the client sent, percent-encoding intact) is kept for forwarding. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct tg_server *srv = cls;
    struct tg_req *req = calloc(1, sizeof(*req));
    const union MHD_ConnectionInfo *ci;
    const char *q;

    if (req == NULL) {
        return NULL;
    }
    req->target_len = strlen(uri);
    req->target = malloc(req->target_len + 1);
    if (req->target == NULL) {
        free(req);
        return NULL;
    }
    memcpy(req->target, uri, req->target_len + 1);
    q = memchr(uri, '?', req->target_len);
    req->path_len = q == NULL ? req->target_len : (size_t)(q - uri);
    req->start_us = tg_now_us();
    req->conf = tg_conf_ref(srv->conf);
    req->up = srv->up;
    req->stats = srv->stats;
    req->conn = conn;
    req->cancel_on_disconnect = true;
    req->draining = srv->quiesced;
    req->tls = srv->tls;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req->client_fd = ci == NULL ? -1 : ci->connect_fd;
    client_ip(conn, req->client_ip, sizeof(req->client_ip));
    req_link(srv, req);
    TG_STAT_ADD(srv->stats, requests, 1);
    return req;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct tg_req *req = cls;
    struct tg_kv *kv;

    (void)kind;
    if (req->n_hdrs == TG_REQ_HEADERS_MAX) {
        return MHD_NO;
    }
    kv = &req->hdrs[req->n_hdrs++];
    kv->name = key;
    kv->name_len = key_size;
    kv->value = value == NULL ? "" : value;
    kv->value_len = value == NULL ? 0 : value_size;
    return MHD_YES;
}

static int collect_headers(struct tg_req *req, struct MHD_Connection *conn)
{
    int n = MHD_get_connection_values_n(conn, MHD_HEADER_KIND, NULL, NULL);

    if (n < 0) {
        return TG_EINTERNAL;
    }
    if (n > TG_REQ_HEADERS_MAX) {
        /* Kept to the cap so the trace id can still be read; limits answers 431. */
        req->hdrs_dropped = true;
        n = TG_REQ_HEADERS_MAX;
    }
    req->hdrs = calloc((size_t)n + 1, sizeof(*req->hdrs));
    if (req->hdrs == NULL) {
        return TG_ENOMEM;
    }
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, req);
    req->host = tg_req_header(req, "Host", NULL);
    return TG_OK;
}

/* The read clock of conn, kept as its socket context. */
static struct tg_readtimer_entry *read_clock(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci == NULL ? NULL : ci->socket_context;
}

static void count_status(struct tg_worker_stats *st, int status)
{
    if (status == 499) {
        TG_STAT_ADD(st, client_closed, 1);
    } else if (status >= 500) {
        TG_STAT_ADD(st, status_5xx, 1);
        if (status == 504) {
            TG_STAT_ADD(st, timeouts, 1);
        } else if (status == 502) {
            TG_STAT_ADD(st, upstream_errors, 1);
        }
    } else if (status >= 400) {
        TG_STAT_ADD(st, status_4xx, 1);
    } else if (status >= 300) {
        TG_STAT_ADD(st, status_3xx, 1);
    } else {
        TG_STAT_ADD(st, status_2xx, 1);
    }
}

static void finish(struct tg_server *srv, struct tg_req *req)
{
    if (req->logged) {
        return;
    }
    req->logged = true;
    if (req->resp.status == 0) {
        tg_req_fail(req, TG_EINTERNAL, NULL);
    }
    if (req->draining) {
        req->resp.close = true;
    }
    req->bytes_out = req->resp.body_len;
    if (srv->app.on_response != NULL) {
        srv->app.on_response(srv->app.arg, req);
    }
    count_status(srv->stats, req->client_gone ? 499 : req->resp.status);
    TG_STAT_ADD(srv->stats, bytes_in, req->bytes_in);
    TG_STAT_ADD(srv->stats, bytes_out, req->bytes_out);
}

static enum MHD_Result queue(struct tg_server *srv, struct tg_req *req, struct MHD_Connection *conn)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;
    size_t pos = 0;
    const char *name;
    const char *value;

    finish(srv, req);
    resp =
        MHD_create_response_from_buffer(req->resp.body_len, req->resp.body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        return MHD_NO;
    }
    req->resp.body = NULL; /* owned by resp now */
    req->resp.body_len = 0;
    while (tg_resp_header_next(&req->resp, &pos, &name, &value)) {
        MHD_add_response_header(resp, name, value);
    }
    if (req->resp.close) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    ok = MHD_queue_response(conn, (unsigned)req->resp.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void on_client_hangup(void *arg, int fd, uint32_t events)
{
    struct tg_req *req = arg;
    struct tg_server *srv = req->worker_srv;

    (void)events;
    tg_loop_unwatch(srv->loop, fd);
    req->watching = false;
    req->client_gone = true;
    if (!req->cancel_on_disconnect) {
        /* A non-idempotent call that reached its upstream finishes and is logged. */
        tg_log(TG_LOG_INFO, req, "client.gone", "client left; upstream call continues");
        return;
    }
    req->cancelled = true;
    req->err = TG_ECANCELED;
    req->err_detail = "client closed connection";
    tg_up_cancel_req(req, TG_ECANCELED);
    /* Handlers complete the request when their last call ends; cover one that had none. */
    tg_req_complete(req);
}

/* Set as req->complete_fn: the handler's work is over, let MHD call us again. */
static void on_complete(struct tg_req *req)
{
    struct tg_server *srv = req->worker_srv;

    if (!req->suspended) {
        return; /* still inside the access handler: it sees req->completed */
    }
    if (req->watching) {
        /* Stop listening before resume: MHD owns the fd again. Parked, not removed: the next
         * request on this keep-alive connection watches it again for free. */
        tg_loop_park(srv->loop, req->client_fd);
        req->watching = false;
    }
    req->suspended = false;
    srv->resumed = true;
    MHD_resume_connection(req->conn);
}

static bool expects_body(const struct tg_req *req)
{
    size_t len;
    const char *cl = tg_req_header(req, "Content-Length", &len);

    if (tg_req_header(req, "Transfer-Encoding", NULL) != NULL) {
        return true;
    }
    return cl != NULL && !(len == 1 && cl[0] == '0');
}

static enum MHD_Result first_call(struct tg_server *srv, struct tg_req *req,
                                  struct MHD_Connection *conn, const char *method,
                                  const char *version)
{
    int rc;

    req->started = true;
    req->method = method;
    req->version = version;
    req->worker_srv = srv;
    req->complete_fn = on_complete;
    rc = collect_headers(req, conn);
    if (rc != TG_OK) {
        return MHD_NO;
    }
    rc = srv->app.on_headers(srv->app.arg, req);
    if (rc == TG_MW_DONE && expects_body(req)) {
        /* Answered before the body: MHD will not read it and closes after the response. */
        req->resp.close = true;
        return queue(srv, req, conn);
    }
    /* Without a body the answer waits for the final call, and keep-alive survives. */
    return MHD_YES;
}

static enum MHD_Result take_body(struct tg_req *req, const char *data, size_t *size)
{
    size_t n = *size;

    *size = 0;
    req->bytes_in += n;
    if (req->resp.status != 0) {
        return req->bytes_in > req->body_limit + BODY_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (req->body_len + n > req->body_limit) {
        tg_req_fail(req, TG_ETOOBIG, "request body too large");
        req->resp.close = true;
        TG_FREE(req->body);
        req->body_len = req->body_cap = 0;
        return MHD_YES;
    }
    if (tg_buf_append(&req->body, &req->body_len, &req->body_cap, data, n) != TG_OK) {
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result run_request(struct tg_server *srv, struct tg_req *req,
                                   struct MHD_Connection *conn)
{
    struct tg_readtimer_entry *clock = read_clock(conn);
    int rc;

    req->chain_started = true;
    if (clock != NULL) {
        tg_readtimer_stop(&srv->reads, clock); /* received: the route's deadline rules now */
    }
    if (req->resp.status != 0) {
        return queue(srv, req, conn); /* 413 decided while reading the body */
    }
    req->in_handler = true;
    rc = srv->app.on_request(srv->app.arg, req);
    req->in_handler = false;
    if (rc != TG_MW_ASYNC || req->completed) {
        return queue(srv, req, conn);
    }
    req->suspended = true;
    MHD_suspend_connection(conn);
    /* MHD does not notice a client that leaves while its connection is suspended: we watch
     * for the hang-up ourselves. */
    if (req->client_fd >= 0 &&
        tg_loop_watch(srv->loop, req->client_fd, EPOLLRDHUP, on_client_hangup, req) == TG_OK) {
        req->watching = true;
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct tg_server *srv = cls;
    struct tg_req *req = *con_cls;

    (void)url; /* percent-decoded: never forwarded, req->target is the raw one */
    if (req == NULL) {
        return MHD_NO; /* out of memory in on_uri */
    }
    if (!req->started) {
        return first_call(srv, req, conn, method, version);
    }
    if (*upload_data_size > 0) {
        return take_body(req, upload_data, upload_data_size);
    }
    if (!req->chain_started) {
        return run_request(srv, req, conn);
    }
    /* Resumed after the upstream work. */
    if (req->client_gone) {
        req->resp.status = req->resp.status == 0 ? 499 : req->resp.status;
        finish(srv, req);
        return MHD_NO;
    }
    return queue(srv, req, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct tg_server *srv = cls;
    struct tg_req *req = *con_cls;
    struct tg_readtimer_entry *clock = read_clock(conn);

    if (clock != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        tg_readtimer_start(&srv->reads, clock, tg_now_us()); /* ready for the next request */
    }
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    if (req->watching) {
        tg_loop_park(srv->loop, req->client_fd);
        req->watching = false;
    }
    if (req->pending > 0) {
        req->cancelled = true;
        tg_up_cancel_req(req, TG_ECANCELED);
    }
    if (!req->logged && req->chain_started) {
        req->client_gone = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
        finish(srv, req);
    }
    req_unlink(srv, req);
    tg_req_free(req);
}

/* A client too slow to deliver its request: shutting the socket down makes MHD read the end
 * of the stream and close the connection in its own time. */
static void on_read_expired(void *arg, int fd)
{
    (void)arg;
    shutdown(fd, SHUT_RDWR);
    tg_log(TG_LOG_INFO, NULL, "client.timeout", "request not received in time: closing fd %d", fd);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct tg_server *srv = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci == NULL ? -1 : ci->connect_fd;
    struct tg_readtimer_entry *e = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        TG_STAT_ADD(srv->stats, connections, 1);
        /* MHD tells us when it closes this fd, so its hang-up watch may be parked. */
        tg_loop_track(srv->loop, fd);
        e = calloc(1, sizeof(*e));
        if (e != NULL) {
            e->fd = fd;
            tg_readtimer_start(&srv->reads, e, tg_now_us());
        }
        *socket_context = e;
        return;
    }
    TG_STAT_ADD(srv->stats, connections, -1);
    tg_loop_unwatch(srv->loop, fd);
    tg_loop_forget(srv->loop, fd);
    if (e != NULL) {
        tg_readtimer_stop(&srv->reads, e);
        free(e);
        *socket_context = NULL;
    }
}

static void on_mhd_ready(void *arg, int fd, uint32_t events)
{
    struct tg_server *srv = arg;

    (void)fd;
    (void)events;
    srv->mhd_ready = true; /* MHD_run in the tick does the work */
}

/* MHD_run costs a system call even when nothing is ready: run it when its epoll fd woke us,
 * when one of its timeouts is due, or when a connection was resumed in this pass. */
static void hook_tick(void *arg)
{
    struct tg_server *srv = arg;
    MHD_UNSIGNED_LONG_LONG ms = 1;

    if (srv->reads.head != NULL) {
        tg_readtimer_expire(&srv->reads, tg_now_us(), on_read_expired, srv);
    }
    if (!srv->mhd_ready && !srv->resumed &&
        (MHD_get_timeout(srv->daemon, &ms) != MHD_YES || ms > 0)) {
        return;
    }
    srv->mhd_ready = false;
    srv->resumed = false;
    MHD_run(srv->daemon);
}

static long hook_timeout(void *arg)
{
    struct tg_server *srv = arg;
    MHD_UNSIGNED_LONG_LONG ms;
    uint64_t read_us = tg_readtimer_next_us(&srv->reads, tg_now_us());
    long read_ms = read_us == UINT64_MAX ? -1 : (long)((read_us + 999) / 1000);

    if (srv->resumed) {
        return 0;
    }
    if (MHD_get_timeout(srv->daemon, &ms) != MHD_YES) {
        return read_ms;
    }
    if (ms > 60000) {
        ms = 60000;
    }
    return read_ms >= 0 && read_ms < (long)ms ? read_ms : (long)ms;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    tg_log(TG_LOG_DEBUG, NULL, "http.error", "%s", msg);
}

static struct MHD_Daemon *daemon_start(struct tg_server *srv, const struct tg_server_opts *o,
                                       const struct sockaddr *sa)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;

    if (sa->sa_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (o->tls_cert_pem != NULL) {
        flags |= MHD_USE_TLS;
        return MHD_start_daemon(
            flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, sa,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->conn_memory,
            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_log, srv, MHD_OPTION_HTTPS_MEM_CERT, o->tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
            o->tls_key_pem, MHD_OPTION_END);
    }
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->conn_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)4096, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_END);
}

static int make_addr(const char *host, unsigned port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return TG_OK;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return TG_OK;
    }
    return TG_EINVAL;
}

struct tg_server *tg_server_start(struct tg_loop *loop, struct tg_up *up,
                                  struct tg_worker_stats *stats, const struct tg_server_opts *o,
                                  const struct tg_server_app *app, struct tg_conf *conf)
{
    struct tg_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *di;

    if (srv == NULL) {
        return NULL;
    }
    srv->loop = loop;
    srv->up = up;
    srv->stats = stats;
    srv->app = *app;
    srv->conf = tg_conf_ref(conf);
    srv->listen_fd = -1;
    srv->tls = o->tls_cert_pem != NULL;
    srv->reads.limit_us = (uint64_t)o->read_timeout_ms * 1000u;
    if (make_addr(o->host, o->port, &ss) != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "server.error", "bad listen address %s", o->host);
        goto fail;
    }
    srv->daemon = daemon_start(srv, o, (const struct sockaddr *)&ss);
    if (srv->daemon == NULL) {
        tg_log(TG_LOG_ERROR, NULL, "server.error", "cannot listen on %s:%u", o->host, o->port);
        goto fail;
    }
    di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (di == NULL || tg_loop_watch(loop, di->epoll_fd, EPOLLIN, on_mhd_ready, srv) != TG_OK ||
        tg_loop_add_hook(loop, hook_tick, hook_timeout, srv) != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "server.error", "cannot watch the HTTP daemon");
        goto fail;
    }
    di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    srv->listen_fd = di == NULL ? -1 : di->listen_fd;
    return srv;
fail:
    tg_server_stop(srv);
    return NULL;
}

unsigned tg_server_port(const struct tg_server *srv)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);

    return di == NULL ? 0 : di->port;
}

void tg_server_set_conf(struct tg_server *srv, struct tg_conf *conf)
{
    struct tg_conf *old = srv->conf;

    srv->conf = tg_conf_ref(conf);
    tg_conf_unref(old);
}

void tg_server_quiesce(struct tg_server *srv)
{
    MHD_socket fd;

    if (srv->quiesced) {
        return;
    }
    srv->quiesced = true;
    for (struct tg_req *r = srv->live; r != NULL; r = r->live_next) {
        r->draining = true;
    }
    fd = MHD_quiesce_daemon(srv->daemon);
    if (fd == MHD_INVALID_SOCKET) {
        return;
    }
    /* Connections already accepted by the kernel would be reset when the socket closes: take
     * them over so each gets its answer. */
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c == -1) {
            break;
        }
        if (MHD_add_connection(srv->daemon, c, (struct sockaddr *)&ss, len) != MHD_YES) {
            close(c);
        }
    }
    close(fd);
}

unsigned tg_server_live(const struct tg_server *srv)
{
    return srv->n_live;
}


void tg_server_cancel_all(struct tg_server *srv, int err)
{
    struct tg_req *next;

    for (struct tg_req *r = srv->live; r != NULL; r = next) {
        next = r->live_next;
        if (!r->suspended) {
            continue;
        }
        tg_log(TG_LOG_WARN, r, "request.cancel", "cancelled: %s", tg_strerror(err));
        r->cancelled = true;
        tg_up_cancel_req(r, err);
        if (r->resp.status == 0) {
            tg_req_fail(r, err, NULL);
        }
        tg_req_complete(r);
    }
}

void tg_server_stop(struct tg_server *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->daemon != NULL) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (di != NULL) {
            tg_loop_unwatch(srv->loop, di->epoll_fd);
        }
        MHD_stop_daemon(srv->daemon);
    }
    tg_conf_unref(srv->conf);
    free(srv);
}
