#ifndef TG_GATEWAY_REQ_H
#define TG_GATEWAY_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "gateway/buf.h"
#include "gateway/list.h"

#ifndef TG_TRACE_ID_MAX
#define TG_TRACE_ID_MAX 128
#endif
#define TG_REQ_HEADERS_MAX 100

struct tg_auth_issuer;
struct tg_conf;
struct tg_handler_ops;
struct tg_loop;
struct tg_ratelimit;
struct tg_scope;
struct tg_req_mem;
struct tg_stream;
struct tg_up;
struct tg_worker_stats;

/* What a middleware or a handler returns; negative values are enum tg_err. */
enum tg_mw_rc {
    TG_MW_NEXT = 0,  /* go on with the next step */
    TG_MW_DONE = 1,  /* req->resp is ready */
    TG_MW_ASYNC = 2, /* upstream calls run; tg_req_complete() follows */
};

/* Where a request is (HAProxy's h1_cs): one value instead of a ladder of flags. It only moves
 * forward. */
enum tg_req_phase {
    TG_REQ_HEADERS = 0,  /* born with the request line: the head is being read */
    TG_REQ_BODY = 1,     /* the headers phase ran: the body is being read */
    TG_REQ_RUNNING = 2,  /* the request phase and the handler run on the loop's stack */
    TG_REQ_WAITING = 3,  /* the handler waits on upstreams; the connection is suspended */
    TG_REQ_ANSWERED = 4, /* req->resp is final and goes out */
    TG_REQ_DONE = 5,     /* ended: req->end is decided, logged and counted */
};

/* What a route decides about its requests, read through req->policy (never copied into the
 * request). Built by routes/table.c, one per route, shared by every request on it and alive
 * as long as the conf that holds it. */
struct tg_policy {
    const char *name;                     /* the route's name: logs, metrics */
    const char *path;                     /* its path pattern ("/patients/{id}"): spans, logs */
    const struct tg_handler_ops *handler; /* what answers it */
    void *handler_conf;                   /* the handler's own part of the route */
    unsigned timeout_ms;                  /* total budget from receipt */
    size_t max_body_bytes;                /* request body cap: 413 beyond */
    bool accept_client_timeout;           /* honour X-Request-Timeout-Ms / grpc-timeout */
    bool cancel_on_disconnect;            /* stop upstream work when the client leaves */
    bool expose_errors;                   /* error bodies may name backends and causes */
    bool access_log;                      /* write request.done lines (probes: off) */
    bool log_pattern;                     /* request.done's path is the pattern, not the path */

    /* Security: read by the auth, scopes, rate_limit and audit middlewares. */
    struct tg_auth_issuer *auth;   /* bearer tokens must verify with it; NULL: no auth */
    const struct tg_scope *scopes; /* SMART scopes, any of which the token must grant */
    size_t n_scopes;
    const char *patient_param;       /* route parameter naming the patient, or NULL */
    struct tg_ratelimit *rate_limit; /* per-client buckets, or NULL */
    bool rate_by_client;             /* buckets by client address even when a token is known */
    bool audit;                      /* one audit record per request */
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
    /* borrowed (request memory): the body as it arrives instead of body (gateway/stream.h), or
     * NULL. Its length, when known, is the answer's Content-Length; else it goes chunked. */
    struct tg_stream *stream;
    struct tg_buf hdrs;
    bool close; /* ask the client connection to close after this response */
};

/* The request's trace context (middleware/trace.c sets it in the headers phase). */
struct tg_req_trace {
    char id[TG_TRACE_ID_MAX + 1]; /* the id on logs, responses and upstream calls */
    char w3c[33];                 /* W3C trace-id, 32 lower-case hex */
    uint8_t bin[16];              /* the same trace-id as bytes */
    char span[17];                /* the gateway's own span: parent of every upstream call */
    char parent[17];              /* the client's span (traceparent's parent-id), or "" */
    uint8_t flags;                /* flags to send on */
    char *state;                  /* validated tracestate to pass on (request memory), or NULL */
};

/* How the request ended: decided once (tg_req_end), read by the access log and /metrics. */
struct tg_req_end {
    int status;             /* final: the answer's status, or 499 when it never fully left */
    int err;                /* why it failed (enum tg_err), TG_OK if it did not */
    const char *detail;     /* cause for the log (static or request memory), may be NULL */
    const char *backend;    /* the backend a fan-out failure came from, or NULL */
    int upstream_status;    /* last upstream status, 0 if none */
    unsigned attempts;      /* upstream calls made */
    char upstream_addr[64]; /* address:port of the last upstream connection, or "" */
    char upstream_span[17]; /* the span id of the last upstream attempt, or "" */
    uint64_t upstream_us;   /* time spent on upstream calls */
    uint64_t duration_us;   /* from the request line to the end, set with status */
    size_t bytes_in;
    size_t bytes_out;
    bool client_gone; /* the client connection closed before the answer was sent */
    bool truncated;   /* a streamed answer's head went out, then the gateway cut its body (err
                       * says why): the status stays the one the client got */
};

/* One request. Created by the server when the request line arrives, freed when the
 * connection is done with it; everything it owns dies in tg_req_cleanup. Lives and dies on one
 * worker thread. */
struct tg_req {
    /* where it runs */
    struct tg_conf *conf;          /* one reference: routes stay valid across a reload */
    struct tg_up *up;              /* borrowed: the worker's upstream client */
    struct tg_loop *loop;          /* borrowed: the worker's loop (tasks from other threads) */
    struct tg_worker_stats *stats; /* borrowed: the worker's counters */

    /* what was asked */
    const char *method;  /* borrowed from the server */
    const char *version; /* borrowed from the server */
    char *target;        /* the raw request-target as received (request memory) */
    size_t target_len;
    size_t path_len;    /* bytes of target before '?' */
    struct tg_kv *hdrs; /* request memory; strings borrowed */
    size_t n_hdrs;      /* kept (at most TG_REQ_HEADERS_MAX), then auth's claim headers */
    size_t n_hdrs_seen; /* received: more than n_hdrs when some were not kept */
    char client_ip[48]; /* the client: the peer, or from X-Forwarded-For behind a trusted proxy */
    char peer_ip[48];   /* the connection's peer address */
    bool peer_trusted;  /* the peer is a trusted proxy: its X-Forwarded-For is passed on */
    bool tls;
    struct tg_req_trace trace;

    /* time, CLOCK_MONOTONIC microseconds */
    uint64_t start_us;
    uint64_t deadline_us; /* 0 = none */

    /* the route */
    const struct tg_policy *policy; /* borrowed from the conf; NULL until routed */
    const void *match;              /* struct tg_route_match in request memory, set with policy */
    const char *patient;            /* the policy's patient parameter as received, or NULL */
    size_t patient_len;

    /* body and answer */
    struct tg_buf body;
    /* request memory: the rest of the body as it arrives, once it streams (gateway/handler.h
     * stream_body_above; the request phase ran then, body holds what came before), or NULL */
    struct tg_stream *body_stream;
    struct tg_resp resp;
    struct tg_req_end end;

    /* where it is */
    enum tg_req_phase phase;
    bool cancelled;       /* stop new work: the client left, or the gateway cancelled it */
    unsigned pending;     /* upstream calls in flight */
    struct tg_list calls; /* those calls (owned by the upstream client) */
    void (*on_complete)(struct tg_req *req); /* the server's: resume the connection */
    struct tg_req_mem *mem;                  /* request memory, freed with it */
};

/* A tchar of RFC 9110 5.6.2: what field names and methods are made of. */
static inline bool tg_http_is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Whether a header name of len bytes is lit, ignoring case (header names are). */
static inline bool tg_header_name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* Monotonic clock in microseconds. */
uint64_t tg_now_us(void);

/* Sets up caller storage as an empty request (the server embeds it in its own record). */
void tg_req_init(struct tg_req *req);

/* Memory that belongs to the request (h2o's h2o_mem_alloc_shared, nginx's pool cleanups):
 * size zeroed bytes, freed with the request, after dispose(p) when dispose is not NULL. key
 * tags it for tg_req_get (NULL: untagged). NULL when out of memory. Loop thread. */
void *tg_req_alloc(struct tg_req *req, const void *key, size_t size, void (*dispose)(void *p));

/* The newest allocation tagged key, or NULL: a middleware's or handler's own state. */
void *tg_req_get(const struct tg_req *req, const void *key);

/* A copy of len bytes of s, NUL-terminated, in request memory. NULL when out of memory. */
char *tg_req_strndup(struct tg_req *req, const char *s, size_t len);

/* Budget left in milliseconds (0 when passed); UINT64_MAX when the request has no deadline. */
uint64_t tg_req_remaining_ms(const struct tg_req *req);

/* First header named name (case-insensitive), NULL if absent. *len gets the value length when
 * len is not NULL. */
const char *tg_req_header(const struct tg_req *req, const char *name, size_t *len);

/* How many headers are named name. */
size_t tg_req_header_count(const struct tg_req *req, const char *name);

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

/* Makes the answer the gateway's JSON error for err: the status of err and the one body shape
 * {"error": tg_strerror(err), "trace_id": ...}, plus "detail" (and "backend" when
 * req->end.backend is set) only on routes with expose_errors. detail (static or request
 * memory, may be NULL) always reaches the log. Anything the upstream said is dropped. Records
 * err in req->end. Returns TG_MW_DONE. */
int tg_req_fail(struct tg_req *req, int err, const char *detail);

/* A handler's work is over and req->resp is ready (or the request was cancelled): the answer
 * can go. Idempotent. Loop thread only. */
void tg_req_complete(struct tg_req *req);

/* Stops the request's work for err (TG_ECANCELED: the client left; TG_EDRAIN: shutdown; ...):
 * marks it cancelled and asks its handler to cancel (while it waits, or while calls still run
 * for an answer that streams), which settles the answer and completes the request. Loop
 * thread only. */
void tg_req_cancel(struct tg_req *req, int err);

/* The body length past which req's body streams to its handler (gateway/handler.h
 * stream_body_above), SIZE_MAX for never. After the headers phase. */
size_t tg_req_stream_above(const struct tg_req *req);

/* The one place a request's end is decided: req->end.status is the answer's status when it was
 * fully sent, else 499 (the client left before the answer was fully sent), whatever the route;
 * a streamed answer the gateway cut (req->end.truncated) keeps the status its head carried.
 * Counts it in the worker's stats. Runs once; later calls do nothing. Returns true the first
 * time. */
bool tg_req_end(struct tg_req *req, bool answer_sent);

/* Frees everything req owns (request memory, body, answer, the conf reference). Calls must be
 * done (pending == 0). Idempotent. */
void tg_req_cleanup(struct tg_req *req);

#endif
