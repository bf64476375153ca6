#ifndef TG_GATEWAY_SERVER_H
#define TG_GATEWAY_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct tg_conf;
struct tg_loop;
struct tg_req;
struct tg_up;
struct tg_worker_stats;

/* What the server calls; the application (the middleware chain) is behind it. All on the
 * worker's loop thread. */
struct tg_server_app {
    void *arg;
    /* Headers are in: validate, find the route (req->policy). Returns TG_MW_NEXT to read the
     * body (up to req->policy->max_body_bytes), or TG_MW_DONE when req->resp is an early answer
     * (when a body follows, it is not read and the connection closes after the answer). */
    int (*on_headers)(void *arg, struct tg_req *req);
    /* The body is complete: returns TG_MW_DONE (req->resp ready) or TG_MW_ASYNC (upstream calls
     * run; tg_req_complete() follows). */
    int (*on_request)(void *arg, struct tg_req *req);
    /* Every answer, just before it leaves. */
    void (*on_response)(void *arg, struct tg_req *req);
    /* The request ended (answer fully sent, or not: req->end is final). */
    void (*on_done)(void *arg, struct tg_req *req);
};

struct tg_server_opts {
    const char *host;           /* listen address */
    unsigned port;              /* 0: the kernel picks */
    unsigned max_connections;   /* this worker's share */
    unsigned timeout_s;         /* idle client connection timeout */
    unsigned read_timeout_ms;   /* most a client may take to deliver one request */
    size_t conn_memory;         /* per-connection memory pool (headers + buffers) */
    bool tls;                   /* HTTPS: the certificate is gateway/tls.c's */
    const char *tls_priorities; /* GnuTLS priority string (versions and ciphers) */
};

struct tg_server;

/* Starts a libmicrohttpd daemon in external-epoll mode on loop (SO_REUSEPORT on the port, so
 * every worker can bind it). conf is the conf new requests use (a reference is taken). up and
 * stats are borrowed. NULL on failure (logged). */
struct tg_server *tg_server_start(struct tg_loop *loop, struct tg_up *up,
                                  struct tg_worker_stats *stats, const struct tg_server_opts *o,
                                  const struct tg_server_app *app, struct tg_conf *conf);

/* The bound port. */
unsigned tg_server_port(const struct tg_server *srv);

/* New requests use conf from now on (a reference is taken, the old one dropped). */
void tg_server_set_conf(struct tg_server *srv, struct tg_conf *conf);

/* Stops accepting: the listen socket is closed after the connections already in its backlog
 * were taken over. Responses from now on close their connection. */
void tg_server_quiesce(struct tg_server *srv);

/* Requests alive (received, not yet answered and done). */
unsigned tg_server_live(const struct tg_server *srv);

/* Cancels every request waiting on upstreams with err (TG_EDRAIN at the end of a drain), each
 * through its handler (logged per request). */
void tg_server_cancel_all(struct tg_server *srv, int err);

/* The version of the libmicrohttpd loaded ("0.9.75"). Any thread. */
const char *tg_server_lib_version(void);

/* Closes every connection and frees the server. No request may be waiting on upstreams
 * (cancel them first). NULL is a no-op. */
void tg_server_stop(struct tg_server *srv);

#endif
