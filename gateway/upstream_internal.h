#ifndef TG_GATEWAY_UPSTREAM_INTERNAL_H
#define TG_GATEWAY_UPSTREAM_INTERNAL_H

/* Private to the upstream client: gateway/upstream.c runs the transfers (the only libcurl
 * user), gateway/upstream_call.c runs a call's life (attempts, waits between them, retries,
 * refusals, the end). Not included anywhere else. libcurl's handles are typed void * here
 * (CURLM *, CURL *): only upstream.c sees curl.h. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/list.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/upstream.h"

struct tg_up {
    void *multi; /* CURLM *, owned */
    struct tg_loop *loop;
    uint64_t timer_due_us; /* 0: no curl timer armed */
    void **pool;           /* CURL *, owned idle easy handles, reset and ready */
    size_t n_pool;
    struct tg_list waiting; /* calls between attempts (backoff, or refused), by due time */
    struct tg_list timed;   /* calls with a streamed body, by when their timer looks again */
};

/* What the transfer of an attempt holds (upstream.c). */
struct tg_up_xfer {
    void *easy;        /* CURL *, owned while an attempt runs */
    void *hdr_block;   /* owned: curl_slist nodes and their text, one allocation */
    void *headers;     /* struct curl_slist *, into hdr_block; NULL for a health check */
    char *tp_line;     /* in hdr_block: the traceparent value, new each attempt */
    char *budget_line; /* in hdr_block: the X-Request-Timeout-Ms value, each attempt */
    char *url;         /* owned: room for any target's origin and the path */
    size_t url_cap;
    void *connect_to; /* owned curl_slist node and its text (tls.server_name), or NULL */
    size_t connect_to_cap;
    size_t send_off;  /* how much of the body went out through the read callback */
    bool recv_paused; /* the write callback paused the transfer: the answer's ring is full */
    bool send_paused; /* the read callback paused it: the request body's ring is empty */
};

/* A call whose request body or answer streams (upstream_stream.c). Its timer replaces curl's
 * total timeout while a body streams: between bytes it is an idle timeout; from the end of a
 * streamed request body to the answer's head (and through an answer held whole) a deadline. */
struct tg_up_streaming {
    struct tg_stream *send; /* borrowed: the request body as it arrives, or NULL */
    struct tg_stream *recv; /* borrowed: the answer's body, once its head asked for it, or NULL */
    tg_up_head_fn *head;    /* asks at the head; NULL: the answer is held whole */
    unsigned idle_ms;
    bool head_seen;       /* the final answer's head was handled */
    bool sent_all;        /* the read callback handed curl the body's end */
    bool idle;            /* the timer is the idle timeout (else a deadline at deadline_us) */
    uint64_t last_us;     /* when bytes last moved to or from the upstream */
    uint64_t deadline_us; /* the deadline of the timer when not idle */
    uint64_t due_us;      /* when the timer looks again; 0: not in up->timed */
    struct tg_list link;  /* in up->timed, by due_us */
};

struct tg_up_call {
    struct tg_up *up;         /* borrowed */
    struct tg_req *req;       /* borrowed; NULL for a health check */
    struct tg_list link;      /* in req->calls */
    struct tg_list wait_link; /* in up->waiting while waiting */
    tg_up_done_fn *done;
    void *arg;
    const char *label; /* borrowed from the conf held by req */

    /* What every attempt sends, kept from tg_up_start. */
    const struct tg_upstream *u;         /* borrowed from the conf; NULL: one fixed url */
    const struct tg_retry_policy *retry; /* borrowed from the conf; NULL: one attempt */
    char *method;                        /* owned */
    char *path;                          /* owned: the request-target; the url without u */
    const char *send;                    /* borrowed request body (req->body) */
    size_t send_len;
    unsigned cap_ms;     /* cap on each attempt (the route's or the upstream's) */
    unsigned connect_ms; /* connect timeout */
    bool probe;          /* a health check: no request, no pool accounting */
    bool quiet_success;  /* no upstream.done line for a first attempt that succeeds */

    /* The attempt. */
    struct tg_up_xfer x;
    struct tg_up_streaming st;
    size_t target;  /* index in u->targets */
    uint64_t tried; /* a bit per target tried */
    unsigned attempt;
    unsigned timeout_ms; /* this attempt's */
    bool running;        /* a transfer is in the multi handle */
    bool waiting;        /* linked in up->waiting */
    bool slot_held;      /* a place in the upstream's bulkhead */
    bool budget_held;    /* a place in the upstream's retry budget (a retry) */
    int wait_err;        /* when due: TG_OK starts the next attempt, else the call ends with it */
    int last_err;        /* how the last attempt ended */
    uint64_t due_us;
    unsigned retry_after_s; /* set when a pool refused the call */
    char span[17];
    char peer[64]; /* "ip:port" of the last attempt's connection, once known */
    uint64_t start_us, end_us;

    /* The answer of the last attempt. */
    struct tg_buf body; /* limited to max_body */
    struct tg_resp rh;  /* owned: the answer's headers (only its header part is used) */
    int status;
    const char *detail;
    bool too_big;
    bool sent; /* some attempt's head went out: the upstream may have the request */
};

/* ---- upstream.c: transfers ---- */

/* Room for every attempt's url and headers: r's headers and the trace lines (r NULL for a
 * health check: no headers). TG_OK or TG_ENOMEM. */
int tg_up_xfer_prepare(struct tg_up_call *call, const struct tg_up_request *r);

/* Starts the transfer of this attempt: to target call->target of call->u (or the fixed url),
 * for call->timeout_ms, with a new span. TG_OK, TG_ENOMEM or TG_EINTERNAL. */
int tg_up_xfer_start(struct tg_up_call *call);

/* Takes the running transfer out of the multi handle (an unfinished one's connection closes). */
void tg_up_xfer_stop(struct tg_up_call *call);

/* Frees what call->x owns. Idempotent. */
void tg_up_xfer_cleanup(struct tg_up_call *call);

/* "ip:port" of the running attempt's connection into out (cap bytes), "" when none is known
 * yet. Before tg_up_xfer_stop. */
void tg_up_xfer_peer(const struct tg_up_call *call, char *out, size_t cap);

/* The transfer goes on in the direction(s) it paused: recv (the answer's ring has room) or send
 * (the request body's ring has bytes or its end). No-op when it is not paused that way. */
void tg_up_xfer_resume(struct tg_up_call *call, bool recv);

/* The transfer runs without curl's total timeout from now on (the stream timer rules). */
void tg_up_xfer_untimed(struct tg_up_call *call);

/* ---- upstream_stream.c: streamed bodies ---- */

/* What the read callback hands curl from a streamed request body. */
#define TG_UP_READ_WAIT  (-1) /* nothing now: pause the upload */
#define TG_UP_READ_ABORT (-2) /* the body will not come whole: fail the transfer */

/* Takes the streaming parts of r (body stream, head hook, idle timeout) into call, before its
 * attempt starts. */
void tg_up_stream_prepare(struct tg_up_call *call, const struct tg_up_request *r);

/* The attempt's transfer started: a streamed request body's timer starts. */
void tg_up_stream_started(struct tg_up_call *call);

/* The read callback: up to n bytes of the streamed body into buf; their count, 0 at the
 * body's end, or TG_UP_READ_WAIT / TG_UP_READ_ABORT. */
long tg_up_stream_read(struct tg_up_call *call, char *buf, size_t n);

/* The head of an answer with status (final: >= 200) and length (-1 unknown) arrived: asks the
 * call's head hook, and when it returns a stream, the answer's body goes there. Returns true
 * when it streams (the caller lifts curl's total timeout). */
bool tg_up_stream_head(struct tg_up_call *call, int status, int64_t length);

/* The write callback of a streamed answer: 1 when the n bytes were taken, 0 when the ring is
 * full (pause; the same bytes come again), -1 when the stream was stopped (fail). */
int tg_up_stream_write(struct tg_up_call *call, const char *data, size_t n);

/* The call ends with err: its answer stream is ended (TG_OK) or stopped, a request body not
 * taken whole is stopped, the timer is dropped. Before done runs. */
void tg_up_stream_finish(struct tg_up_call *call, int err);

/* Whether a body of call streams (either way): it has one attempt only. */
bool tg_up_stream_active(const struct tg_up_call *call);

/* Ends the calls whose stream timer ran out (TG_ETIMEDOUT). */
void tg_up_stream_run_timers(struct tg_up *up);

/* Milliseconds until the next stream timer is due, -1 when none is. */
long tg_up_stream_next_ms(const struct tg_up *up);

/* ---- upstream_call.c: a call's life ---- */

/* The transfer of call is over with err; o is what it says about the target, answered whether
 * a byte of the answer came. Decides what follows: a retry, or the end. */
void tg_up_call_ended(struct tg_up_call *call, int err, enum tg_outcome o, bool answered);

/* Runs the calls whose wait is over: their next attempt, or their end. */
void tg_up_run_waiting(struct tg_up *up);

/* The running attempt of call ran out of time on the stream timer (why: the detail): it stops
 * and the call ends with TG_ETIMEDOUT. */
void tg_up_call_expire(struct tg_up_call *call, const char *why);

#endif
