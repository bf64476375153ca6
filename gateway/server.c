#include "gateway/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "gateway/acceptor.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/readtimer.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "gateway/stream.h"
#include "gateway/tls.h"

/* What a streamed answer of known length hands libmicrohttpd per call of its content reader,
 * at most. libmicrohttpd 0.9.75 callocs this block with every such response, and reads a chunked
 * answer into the connection's own buffer instead: an answer of unknown length (most often a
 * small chunked one) gets a small block, used only when the client cannot take chunks (HTTP/1.0).
 * Zeroing 32 KiB per answer cost 34,000 instructions, more than the rest of the proxy's code. */
#define STREAM_BLOCK         32768
#define STREAM_BLOCK_UNKNOWN 4096

struct tg_server {
    struct MHD_Daemon *daemon;
    struct tg_acceptor *acceptor; /* TLS: the listener that sniffs plain HTTP; else NULL */
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_worker_stats *stats;
    struct tg_server_app app;
    struct tg_conf *conf; /* one reference: what new requests use */
    struct tg_list live;  /* requests alive (struct conn_req) */
    unsigned n_live;
    int listen_fd;
    bool quiesced;
    bool tls;
    struct tg_readtimer reads; /* connections owing a complete request */
    bool mhd_ready;            /* MHD's epoll fd was ready in this pass */
    bool resumed;              /* a connection was resumed: MHD must run */
};

/* A request as the server holds it: the request the application sees, and what ties it to its
 * connection. One allocation with the raw request-target after it. */
struct conn_req {
    struct tg_req req; /* first: the application sees only this */
    struct tg_server *srv;
    struct MHD_Connection *conn;
    int fd;
    bool watching;       /* fd is watched for a hang-up while the request waits */
    bool suspended;      /* MHD_suspend_connection holds (the request waits on something) */
    bool queued;         /* the answer was handed to MHD */
    size_t stream_above; /* the body streams once it is longer (SIZE_MAX: never) */
    struct tg_list link; /* in srv->live */
    char target[];
};

static struct conn_req *conn_req_of(struct tg_req *req)
{
    return (struct conn_req *)(void *)req;
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

static void resume_after_handler(struct tg_req *req);

/* Runs once per request, before the URI is decoded: the request object is born here so the
 * raw request-target (what the client sent, percent-encoding intact) is kept for forwarding. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct tg_server *srv = cls;
    size_t len = strlen(uri);
    struct conn_req *cr = malloc(sizeof(*cr) + len + 1);
    struct tg_req *req;
    const union MHD_ConnectionInfo *ci;
    const char *q;

    if (cr == NULL) {
        return NULL;
    }
    req = &cr->req;
    tg_req_init(req);
    memcpy(cr->target, uri, len + 1);
    req->target = cr->target;
    req->target_len = len;
    q = memchr(uri, '?', len);
    req->path_len = q == NULL ? len : (size_t)(q - uri);
    req->start_us = tg_now_us();
    req->conf = tg_conf_ref(srv->conf);
    req->up = srv->up;
    req->loop = srv->loop;
    req->stats = srv->stats;
    req->tls = srv->tls;
    req->on_complete = resume_after_handler;
    cr->srv = srv;
    cr->conn = conn;
    cr->watching = false;
    cr->suspended = false;
    cr->queued = false;
    cr->stream_above = SIZE_MAX;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    cr->fd = ci == NULL ? -1 : ci->connect_fd;
    client_ip(conn, req->peer_ip, sizeof(req->peer_ip));
    memcpy(req->client_ip, req->peer_ip, sizeof(req->client_ip));
    tg_list_push(&srv->live, &cr->link);
    srv->n_live++;
    TG_STAT_ADD(srv->stats, live, 1);
    TG_STAT_ADD(srv->stats, requests, 1);
    return cr;
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
    /* Kept to the cap so the trace id can still be read; validate answers 431. */
    req->n_hdrs_seen = (size_t)n;
    if (n > TG_REQ_HEADERS_MAX) {
        n = TG_REQ_HEADERS_MAX;
    }
    req->hdrs = tg_req_alloc(req, NULL, ((size_t)n + 1) * sizeof(*req->hdrs), NULL);
    if (req->hdrs == NULL) {
        return TG_ENOMEM;
    }
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, req);
    return TG_OK;
}

/* The read clock of conn, kept as its socket context. */
static struct tg_readtimer_entry *read_clock(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci == NULL ? NULL : ci->socket_context;
}

/* A HEAD answer's Content-Length (the upstream's, kept by the handler): MHD writes the length
 * of the body it holds, so the header is given as that length instead of as a header. */
static bool is_head_length(const struct tg_req *req, const char *name)
{
    return strcmp(req->method, "HEAD") == 0 && strcasecmp(name, "Content-Length") == 0;
}

/* Never called: MHD sends no body in a HEAD answer. buf is not const: libmicrohttpd's type.
 * NOLINTNEXTLINE(readability-non-const-parameter) */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max);
static void wake_reader(void *arg);

/* The answer as MHD's response. A HEAD answer that names its length (RFC 9110 9.3.2: the length
 * a GET would have had) gets a body-less response of that size, so MHD's Content-Length says
 * it; MHD 0.9.75 otherwise writes the held body's length (0), and with
 * MHD_RF_INSANITY_HEADER_CONTENT_LENGTH it would send both headers. A streamed answer is read
 * from its ring as it fills. */
static struct MHD_Response *make_response(struct tg_req *req)
{
    const char *cl =
        strcmp(req->method, "HEAD") == 0 ? tg_resp_header_get(&req->resp, "Content-Length") : NULL;
    struct MHD_Response *resp;
    char *end = NULL;
    unsigned long long n = 0;

    if (cl != NULL && cl[0] >= '0' && cl[0] <= '9') {
        errno = 0;
        n = strtoull(cl, &end, 10);
    }
    if (end != NULL && *end == '\0' && errno == 0) {
        return MHD_create_response_from_callback((uint64_t)n, 4096, no_body, NULL, NULL);
    }
    if (req->resp.stream != NULL) {
        /* No free callback: the stream is request memory, and libmicrohttpd 0.9.75 destroys the
         * response after it said the request ended (and the request was freed). */
        int64_t len = req->resp.stream->length;
        tg_stream_on_data(req->resp.stream, wake_reader, req);
        return MHD_create_response_from_callback(len >= 0 ? (uint64_t)len : MHD_SIZE_UNKNOWN,
                                                 len >= 0 ? STREAM_BLOCK : STREAM_BLOCK_UNKNOWN,
                                                 read_stream, req, NULL);
    }
    resp =
        MHD_create_response_from_buffer(req->resp.body_len, req->resp.body, MHD_RESPMEM_MUST_FREE);
    if (resp != NULL) {
        req->resp.body = NULL; /* owned by resp now */
        req->resp.body_len = 0;
    }
    return resp;
}

/* Hands req->resp to MHD: the response phase runs first (trace headers), then it is queued. */
static enum MHD_Result queue(struct tg_server *srv, struct tg_req *req, struct MHD_Connection *conn)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;
    size_t pos = 0;
    const char *name;
    const char *value;

    req->phase = TG_REQ_ANSWERED;
    conn_req_of(req)->queued = true;
    if (req->resp.status == 0) {
        tg_req_fail(req, TG_EINTERNAL, "no answer was made");
    }
    /* A refused malformed or ambiguous message leaves the stream unreadable: nothing after it
     * may be taken for a new request. */
    if (srv->quiesced || tg_err_closes(req->end.err)) {
        req->resp.close = true;
    }
    srv->app.on_response(srv->app.arg, req);
    req->end.bytes_out = req->resp.body_len;
    resp = make_response(req);
    if (resp == NULL) {
        return MHD_NO;
    }
    while (tg_resp_header_next(&req->resp, &pos, &name, &value)) {
        if (!is_head_length(req, name)) {
            MHD_add_response_header(resp, name, value);
        }
    }
    if (req->resp.close) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    ok = MHD_queue_response(conn, (unsigned)req->resp.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* Whether part of a streamed request body is still to come from the client. */
static bool body_pending(const struct tg_req *req)
{
    return req->body_stream != NULL && !req->body_stream->ended &&
           tg_stream_err(req->body_stream) == TG_OK;
}

static void on_client_hangup(void *arg, int fd, uint32_t events)
{
    struct conn_req *cr = arg;
    struct tg_req *req = &cr->req;

    (void)events;
    tg_loop_unwatch(cr->srv->loop, fd);
    cr->watching = false;
    req->end.client_gone = true;
    if (!req->policy->cancel_on_disconnect && req->phase == TG_REQ_WAITING && !body_pending(req)) {
        /* A non-idempotent call that reached its upstream finishes and is logged (as 499: the
         * answer cannot reach the client). A body still streaming cannot be finished: cut. */
        tg_log(TG_LOG_INFO, req, "client.gone", "client left; upstream call continues");
        return;
    }
    tg_req_cancel(req, TG_ECANCELED);
    if (req->resp.stream != NULL) {
        /* Waiting on a streamed answer: its reader fails, and MHD closes the connection. */
        tg_stream_stop(req->resp.stream, TG_ECANCELED);
    }
}

/* MHD stops handling the connection until conn_resume: the request waits on its upstream calls
 * or on a streamed body's ring. MHD does not notice a client that leaves while its connection
 * is suspended: we watch for the hang-up ourselves. */
static void conn_suspend(struct conn_req *cr)
{
    MHD_suspend_connection(cr->conn);
    cr->suspended = true;
    if (cr->fd >= 0 &&
        tg_loop_watch(cr->srv->loop, cr->fd, EPOLLRDHUP, on_client_hangup, cr) == TG_OK) {
        cr->watching = true;
    }
}

/* MHD handles the connection again (and calls the access handler or the content reader in
 * this loop pass). No-op when it is not suspended. */
static void conn_resume(struct conn_req *cr)
{
    if (!cr->suspended) {
        return;
    }
    if (cr->watching) {
        /* Stop listening before resume: MHD owns the fd again. Parked, not removed: the next
         * request on this keep-alive connection watches it again for free. */
        tg_loop_park(cr->srv->loop, cr->fd);
        cr->watching = false;
    }
    cr->suspended = false;
    cr->srv->resumed = true;
    MHD_resume_connection(cr->conn);
}

/* Set as req->on_complete: the handler's work is over, let MHD call the access handler again
 * (which queues the answer). While a streamed body is still being read, the connection is not
 * suspended: the access handler's final call queues the answer. */
static void resume_after_handler(struct tg_req *req)
{
    conn_resume(conn_req_of(req));
}

/* A streamed answer's ring has bytes, its end, or a failure: the reader goes on. */
static void wake_reader(void *arg)
{
    conn_resume(conn_req_of(arg));
}

/* A streamed request body's ring has room again: MHD hands over the rest of what it read. */
static void wake_body(void *arg)
{
    conn_resume(arg);
}

/* libmicrohttpd's content reader of a streamed answer: what the ring holds. An empty ring
 * suspends the connection (0.9.75 calls a reader that returned 0 again at once: suspending is
 * how it waits without spinning) until the upstream's next bytes wake it. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct tg_req *req = cls;
    struct tg_stream *s = req->resp.stream;
    size_t n = tg_stream_take(s, buf, max);

    (void)pos;
    if (n > 0) {
        req->end.bytes_out += n;
        return (ssize_t)n;
    }
    if (tg_stream_err(s) != TG_OK) {
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut answer */
    }
    if (tg_stream_is_done(s)) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    tg_stream_wait(s);
    conn_suspend(conn_req_of(req));
    return 0;
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

/* The headers phase. An early answer goes at once when a body follows (MHD then does not read
 * it and closes after the answer); without a body it waits for the final call, and keep-alive
 * survives. */
static void start_body_stream(struct tg_server *srv, struct conn_req *cr, int64_t length);
static int64_t announced_length(const struct tg_req *req);

static enum MHD_Result first_call(struct tg_server *srv, struct conn_req *cr,
                                  struct MHD_Connection *conn, const char *method,
                                  const char *version)
{
    struct tg_req *req = &cr->req;

    req->method = method;
    req->version = version;
    req->phase = TG_REQ_BODY;
    if (collect_headers(req, conn) != TG_OK) {
        return MHD_NO;
    }
    if (srv->app.on_headers(srv->app.arg, req) == TG_MW_NEXT) {
        int64_t length = -1;
        req->body.limit = req->policy->max_body_bytes;
        cr->stream_above = tg_req_stream_above(req);
        if (cr->stream_above != SIZE_MAX) {
            length = announced_length(req); /* a chunked body is watched as it grows */
        }
        if (length < 0 || (uint64_t)length <= cr->stream_above) {
            return MHD_YES;
        }
        /* Announced longer than it may be held: it streams from its first byte. */
        start_body_stream(srv, cr, length);
        return req->phase == TG_REQ_ANSWERED ? queue(srv, req, conn) : MHD_YES;
    }
    req->phase = TG_REQ_ANSWERED;
    if (expects_body(req)) {
        req->resp.close = true;
        return queue(srv, req, conn);
    }
    return MHD_YES;
}

/* A body chunk. Past the route's limit the answer is 413 and the rest is read and dropped,
 * however long it is, so that the client always gets its 413 and the request its log line:
 * libmicrohttpd 0.9.75 cannot queue an answer before the body is complete. The client's read
 * deadline (limits.client_timeout_ms) still bounds how long that takes. */
static enum MHD_Result take_body(struct tg_server *srv, struct conn_req *cr, const char *data,
                                 size_t *size)
{
    struct tg_req *req = &cr->req;
    size_t n = *size;
    int rc;

    *size = 0;
    req->end.bytes_in += n;
    if (req->phase == TG_REQ_ANSWERED) {
        return MHD_YES;
    }
    rc = tg_buf_append(&req->body, data, n);
    if (rc == TG_ETOOBIG) {
        tg_req_fail(req, TG_ETOOBIG, "request body too large");
        req->resp.close = true;
        req->phase = TG_REQ_ANSWERED;
        tg_buf_cleanup(&req->body);
        return MHD_YES;
    }
    if (rc == TG_OK && req->body.len > cr->stream_above) {
        /* A chunked body grew past what may be held: what came goes first, the rest streams. */
        start_body_stream(srv, cr, -1);
    }
    return rc == TG_OK ? MHD_YES : MHD_NO;
}

/* The body is complete: the request phase and the handler run. */
static enum MHD_Result run_request(struct tg_server *srv, struct conn_req *cr)
{
    struct tg_req *req = &cr->req;
    struct tg_readtimer_entry *clock = read_clock(cr->conn);

    if (clock != NULL) {
        tg_readtimer_stop(&srv->reads, clock); /* received: the route's deadline rules now */
    }
    if (req->phase == TG_REQ_ANSWERED) {
        return queue(srv, req, cr->conn); /* decided before or while reading the body */
    }
    req->phase = TG_REQ_RUNNING;
    if (srv->app.on_request(srv->app.arg, req) != TG_MW_ASYNC || req->phase == TG_REQ_ANSWERED) {
        return queue(srv, req, cr->conn);
    }
    req->phase = TG_REQ_WAITING;
    conn_suspend(cr);
    return MHD_YES;
}

static void stream_dispose(void *p)
{
    tg_stream_cleanup(p);
}

/* The length a client announced (its digits were checked by validate), -1 when chunked. */
static int64_t announced_length(const struct tg_req *req)
{
    size_t len = 0;
    const char *v = tg_req_header(req, "Content-Length", &len);
    int64_t n = 0;

    if (v == NULL) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* The body streams from here on (length: the whole body's, -1 when chunked): the request phase
 * runs now, and the handler takes what req->body holds, then the rest through req->body_stream
 * as it arrives. The client's read deadline stops here: a streamed body is paced by the
 * upstream too, and its stalls are the idle timeouts' (the client connection's, the call's
 * stream idle timeout). An answer made now (phase ANSWERED) closes the connection, and the rest
 * of the body is dropped. */
static void start_body_stream(struct tg_server *srv, struct conn_req *cr, int64_t length)
{
    struct tg_req *req = &cr->req;
    struct tg_stream *s = tg_req_alloc(req, NULL, sizeof(*s), stream_dispose);
    struct tg_readtimer_entry *clock = read_clock(cr->conn);

    if (clock != NULL) {
        tg_readtimer_stop(&srv->reads, clock);
    }
    if (s == NULL || tg_stream_init(s, req->conf->stream_buffer_bytes, length) != TG_OK) {
        tg_req_fail(req, TG_ENOMEM, "no memory for a streamed body");
    } else {
        tg_stream_on_room(s, wake_body, cr);
        req->body_stream = s;
        req->phase = TG_REQ_RUNNING;
        if (srv->app.on_request(srv->app.arg, req) == TG_MW_ASYNC &&
            req->phase != TG_REQ_ANSWERED) {
            req->phase = TG_REQ_WAITING;
            return;
        }
        tg_stream_stop(s, TG_ECANCELED); /* nobody takes the rest */
    }
    req->phase = TG_REQ_ANSWERED;
    req->resp.close = true;
}

/* A chunk of a streamed body: into the ring as far as it has room; MHD keeps the rest and the
 * connection is suspended until the upstream call made room (wake_body). Past the route's limit
 * the call is cancelled (the upstream never gets a whole body) and the answer is 413; once the
 * ring was stopped (the call ended) the rest is read and dropped. */
static enum MHD_Result take_body_stream(struct conn_req *cr, const char *data, size_t *size)
{
    struct tg_req *req = &cr->req;
    struct tg_stream *s = req->body_stream;
    size_t n = *size;
    size_t k;

    if (tg_stream_err(s) == TG_OK && n > req->policy->max_body_bytes - req->end.bytes_in) {
        tg_stream_stop(s, TG_ETOOBIG);
        tg_req_cancel(req, TG_ETOOBIG);
        req->end.detail = "request body too large";
    }
    if (tg_stream_err(s) != TG_OK) {
        req->end.bytes_in += n;
        *size = 0;
        return MHD_YES;
    }
    k = tg_stream_put(s, data, n);
    req->end.bytes_in += k;
    *size = n - k;
    if (k < n) {
        conn_suspend(cr);
    }
    return MHD_YES;
}

/* The access handler while the handler runs or after it answered, with a streamed body or
 * without: more of the body, or its end. */
static enum MHD_Result after_start(struct tg_server *srv, struct conn_req *cr, const char *data,
                                   size_t *size)
{
    struct tg_req *req = &cr->req;

    if (*size > 0) {
        return req->body_stream != NULL ? take_body_stream(cr, data, size)
                                        : take_body(srv, cr, data, size);
    }
    if (req->body_stream != NULL) {
        tg_stream_end(req->body_stream); /* no-op once stopped, or ended before */
    }
    if (req->phase == TG_REQ_WAITING) {
        conn_suspend(cr); /* the whole body is in: wait for the answer */
        return MHD_YES;
    }
    if (cr->queued) {
        return MHD_YES;
    }
    if (req->end.client_gone) {
        return MHD_NO; /* resumed after the client left: nobody to answer */
    }
    return run_request(srv, cr);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct tg_server *srv = cls;
    struct conn_req *cr = *con_cls;

    (void)url; /* percent-decoded: never forwarded, req->target is the raw one */
    if (cr == NULL) {
        return MHD_NO; /* out of memory in on_uri */
    }
    switch (cr->req.phase) {
    case TG_REQ_HEADERS:
        return first_call(srv, cr, conn, method, version);
    case TG_REQ_BODY:
        if (*upload_data_size > 0) {
            return take_body(srv, cr, upload_data, upload_data_size);
        }
        return run_request(srv, cr);
    case TG_REQ_WAITING: /* only while a streamed body is read */
    case TG_REQ_ANSWERED:
        return after_start(srv, cr, upload_data, upload_data_size);
    default:
        return MHD_YES;
    }
}

/* MHD is done with the request: its end is decided here (answer fully sent or not), then the
 * done phase runs and the request is freed. */
static void on_request_ended(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct tg_server *srv = cls;
    struct conn_req *cr = *con_cls;
    struct tg_req *req;
    struct tg_readtimer_entry *clock = read_clock(conn);

    if (clock != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        tg_readtimer_start(&srv->reads, clock, tg_now_us()); /* ready for the next request */
    }
    if (cr == NULL) {
        return;
    }
    *con_cls = NULL;
    req = &cr->req;
    cr->suspended = false; /* MHD is done with the connection: nothing to resume any more */
    if (cr->watching) {
        tg_loop_park(srv->loop, cr->fd);
        cr->watching = false;
    }
    if (req->pending > 0) {
        /* MHD is closing the connection (daemon stop): nothing to resume any more. */
        req->on_complete = NULL;
        tg_req_cancel(req, TG_ECANCELED);
    }
    if (req->phase > TG_REQ_HEADERS &&
        tg_req_end(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && cr->queued)) {
        srv->app.on_done(srv->app.arg, req);
    }
    tg_list_remove(&cr->link);
    srv->n_live--;
    TG_STAT_ADD(srv->stats, live, -1);
    tg_req_cleanup(req);
    free(cr);
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
        e = malloc(sizeof(*e));
        if (e != NULL) {
            tg_readtimer_entry_init(e, fd);
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

    if (!tg_readtimer_is_empty(&srv->reads)) {
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

/* fmt is libmicrohttpd's own format: the attribute says so to clang's -Wformat-nonliteral. */
TG_PRINTF(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
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

/* MHD_OPTION_STRICT_FOR_CLIENT is 0: at 1, libmicrohttpd answers a missing Host itself (an
 * HTML page, its header block sent twice, no trace id) and refuses spaces in the target before
 * the gateway sees the request. validate (middleware/validate.c) refuses both, and more, with
 * the gateway's JSON error, and the connection closes after it. */
static struct MHD_Daemon *daemon_start(struct tg_server *srv, const struct tg_server_opts *o,
                                       const struct sockaddr *sa)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;

    if (sa->sa_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (o->tls) {
        /* The acceptor owns the listener (tg_acceptor_start); the certificate comes from
         * gateway/tls.c at each handshake, so a reload changes it without a restart. */
        flags |= MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET;
        return MHD_start_daemon(
            flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->conn_memory,
            MHD_OPTION_STRICT_FOR_CLIENT, (int)0, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
            MHD_OPTION_NOTIFY_COMPLETED, on_request_ended, srv, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
            MHD_OPTION_HTTPS_CERT_CALLBACK, tg_tls_cert_callback(), MHD_OPTION_HTTPS_PRIORITIES,
            o->tls_priorities, MHD_OPTION_END);
    }
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->conn_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)4096, MHD_OPTION_STRICT_FOR_CLIENT, (int)0, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        srv, MHD_OPTION_NOTIFY_COMPLETED, on_request_ended, srv, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_END);
}

/* A TLS connection the acceptor let through: libmicrohttpd takes it from here. */
static void adopt_tls(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
    struct tg_server *srv = arg;

    if (MHD_add_connection(srv->daemon, fd, sa, len) != MHD_YES) {
        close(fd); /* at its connection limit; MHD logged why */
        return;
    }
    srv->resumed = true; /* its handshake bytes are waiting: run MHD in this pass */
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
    srv->tls = o->tls;
    tg_list_init(&srv->live);
    tg_readtimer_init(&srv->reads, (uint64_t)o->read_timeout_ms * 1000u);
    if (make_addr(o->host, o->port, &ss) != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "server.error", "bad listen address %s", o->host);
        goto fail;
    }
    srv->daemon = daemon_start(srv, o, (const struct sockaddr *)&ss);
    if (srv->daemon != NULL && o->tls) {
        srv->acceptor = tg_acceptor_start(loop, (const struct sockaddr *)&ss,
                                          ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                   : sizeof(struct sockaddr_in),
                                          o->read_timeout_ms, o->max_connections, adopt_tls, srv);
    }
    if (srv->daemon == NULL || (o->tls && srv->acceptor == NULL)) {
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
    const union MHD_DaemonInfo *di;

    if (srv->acceptor != NULL) {
        return tg_acceptor_port(srv->acceptor);
    }
    di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
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
    srv->quiesced = true; /* answers from now on close their connection */
    if (srv->acceptor != NULL) {
        tg_acceptor_quiesce(srv->acceptor);
        return;
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
    struct tg_list *pos;
    struct tg_list *nxt;

    TG_LIST_FOREACH_SAFE(pos, nxt, &srv->live)
    {
        struct tg_req *r = &TG_LIST_ENTRY(pos, struct conn_req, link)->req;
        if (r->phase != TG_REQ_WAITING && r->pending == 0) {
            continue; /* neither waiting nor streaming an answer */
        }
        tg_log(TG_LOG_WARN, r, "request.cancel", "cancelled: %s", tg_err_cancel_reason(err));
        tg_req_cancel(r, err);
    }
}

const char *tg_server_lib_version(void)
{
    return MHD_get_version();
}

void tg_server_stop(struct tg_server *srv)
{
    if (srv == NULL) {
        return;
    }
    tg_acceptor_stop(srv->acceptor);
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
