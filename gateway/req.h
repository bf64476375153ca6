#ifndef TG_GATEWAY_REQ_H
#define TG_GATEWAY_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#ifndef TG_TRACE_ID_MAX
#define TG_TRACE_ID_MAX 128
#endif
#define TG_REQ_HEADERS_MAX 128

struct tg_conf;
struct tg_server;
struct tg_route;
struct tg_up;
struct tg_up_call;
struct tg_worker_stats;

/* What a middleware or a handler returns; negative values are enum tg_err. */
enum tg_mw_rc {
    TG_MW_NEXT = 0,  /* go on with the next middleware */
    TG_MW_DONE = 1,  /* req->resp is ready */
    TG_MW_ASYNC = 2, /* upstream calls run; tg_req_complete() follows */
};

/* One request header as received; strings borrowed from the HTTP server. */
struct tg_kv {
    const char *name;
    const char *value;
    size_t name_len;
    size_t value_len;
};

/* The response being prepared. Headers live in one buffer as "name\0value\0" pairs. */
struct tg_resp {
    int status; /* 0 = not set */
    char *body; /* owned */
    size_t body_len;
    char *hdrs; /* owned */
    size_t hdrs_len;
    size_t hdrs_cap;
    unsigned n_hdrs;
    bool close; /* ask the client connection to close after this response */
};

/* One request's context. Created by the server, freed when the client connection is done
 * with it. Everything it owns dies in tg_req_free(). Lives and dies on one worker thread. */
struct tg_req {
    struct tg_conf *conf;          /* one reference held: routes stay valid across a reload */
    struct tg_up *up;              /* borrowed: the worker's upstream client */
    struct tg_worker_stats *stats; /* borrowed: the worker's counters */
    void *conn;                    /* borrowed: server connection handle (opaque) */
    struct tg_server *worker_srv;  /* borrowed: the server that received it */
    int client_fd;

    char *target; /* owned: raw request-target as received */
    size_t target_len;
    size_t path_len;     /* bytes of target before '?' */
    const char *method;  /* borrowed from the server */
    const char *version; /* borrowed from the server */
    struct tg_kv *hdrs;  /* owned array; strings borrowed */
    size_t n_hdrs;
    bool hdrs_dropped; /* more than TG_REQ_HEADERS_MAX headers: the rest not kept */
    char client_ip[48];
    bool tls;
    const char *host; /* borrowed Host header or NULL */

    /* trace context (middleware/trace.c) */
    char trace_id[TG_TRACE_ID_MAX + 1]; /* the id on logs, responses and upstream calls */
    char trace_w3c[33];                 /* W3C trace-id, 32 lower-case hex */
    uint8_t trace_bin[16];              /* the same trace-id as bytes */
    char span_id[17];                   /* the gateway's own span: parent of every upstream call */
    uint8_t trace_flags;                /* flags to send on */
    char *tracestate;                   /* owned: validated tracestate to pass on, or NULL */

    /* time, CLOCK_MONOTONIC microseconds */
    uint64_t start_us;
    uint64_t deadline_us;      /* 0 = none */
    const char *budget_source; /* "route" or "client" */

    /* routing */
    const struct tg_route *route; /* borrowed from conf->routes */
    const char *route_name;       /* borrowed */
    void *match;                  /* owned: struct tg_route_match, set by the router */
    unsigned route_timeout_ms;    /* the route's total budget (router) */
    bool accept_client_timeout;   /* the route honours a client budget (router) */

    /* chain */
    size_t mw_next; /* index of the next middleware to run */
    size_t mw_ran;  /* how many ran on_request (their on_response runs) */

    /* handler */
    void *handler_state;                      /* owned through handler_free */
    void (*handler_free)(struct tg_req *req); /* frees handler_state */

    /* request body */
    char *body; /* owned */
    size_t body_len;
    size_t body_cap;
    size_t body_limit; /* 413 beyond */

    /* lifecycle */
    bool cancelled;           /* stop new work: client left, deadline or shutdown */
    bool client_gone;         /* client connection closed while we waited */
    bool suspended;           /* waiting on upstreams */
    bool completed;           /* tg_req_complete() ran */
    bool in_handler;          /* inside the server's access handler */
    bool logged;              /* access log line written */
    unsigned pending;         /* upstream calls in flight */
    struct tg_up_call *calls; /* borrowed list of calls in flight, owned by the upstream */
    void (*complete_fn)(struct tg_req *req); /* set by the server: resumes the connection */
    bool started;                            /* headers seen */
    bool chain_started;                      /* body complete, chain run */
    bool cancel_on_disconnect;               /* from the route; default true */
    bool watching;                           /* client fd watched for a hang-up */
    bool draining; /* the gateway is shutting down: answer with Connection: close */
    struct tg_req *live_prev, *live_next; /* the server's list of live requests */

    /* outcome */
    struct tg_resp resp;
    int err;                /* cause of a failure (enum tg_err), TG_OK if none */
    const char *err_detail; /* static text: why, for logs and error bodies */
    int upstream_status;    /* last upstream status, 0 if none */
    uint64_t upstream_us;   /* time spent on upstream calls */
    size_t bytes_in;
    size_t bytes_out;
};

/* Whether a header name of len bytes is lit, ignoring case (header names are). */
static inline bool tg_header_name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* Monotonic clock in microseconds. */
uint64_t tg_now_us(void);

/* Budget left in milliseconds (0 when passed); UINT64_MAX when the request has no deadline. */
uint64_t tg_req_remaining_ms(const struct tg_req *req);

/* First header named name (case-insensitive), NULL if absent. *len gets the value length when
 * len is not NULL. */
const char *tg_req_header(const struct tg_req *req, const char *name, size_t *len);

/* How many headers are named name. */
size_t tg_req_header_count(const struct tg_req *req, const char *name);

/* Appends n bytes of data to the malloc'd *buf of *len bytes and *cap capacity, growing it by
 * doubling, and keeps a NUL after the data (not counted in *len). TG_OK or TG_ENOMEM (then
 * nothing changed). */
int tg_buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n);

/* Appends a response header (copied). TG_OK or TG_ENOMEM. */
int tg_resp_add_header(struct tg_resp *resp, const char *name, const char *value);
int tg_resp_add_headern(struct tg_resp *resp, const char *name, size_t name_len, const char *value,
                        size_t value_len);

/* Iterates response headers: *pos starts at 0; returns false at the end. */
bool tg_resp_header_next(const struct tg_resp *resp, size_t *pos, const char **name,
                         const char **value);

/* Value of the response header name, or NULL. */
const char *tg_resp_header_get(const struct tg_resp *resp, const char *name);

/* Replaces the response body (steals body, which must come from malloc). */
void tg_resp_set_body(struct tg_resp *resp, char *body, size_t len);

/* Frees what resp owns and zeroes it. */
void tg_resp_cleanup(struct tg_resp *resp);

/* Makes the response a JSON error {"error":..., "trace_id":...} with the status of err
 * (tg_err_http_status) and message (or tg_strerror(err) when NULL). Adds headers already
 * present stay. Records err in req->err. Returns TG_MW_DONE. */
int tg_req_fail(struct tg_req *req, int err, const char *message);

/* Same with an explicit status (for codes tg_err does not name). */
int tg_req_fail_status(struct tg_req *req, int status, int err, const char *message);

/* Called by a handler when its asynchronous work is over and req->resp is ready (or the
 * request was cancelled). Idempotent. Loop thread only. */
void tg_req_complete(struct tg_req *req);

/* Frees everything req owns, then req. NULL is a no-op. Calls must be done (pending == 0). */
void tg_req_free(struct tg_req *req);

#endif
