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

/* Calls in flight to one label, on this worker (max_in_flight of a call without a pool). */
struct tg_up_label {
    char *name; /* owned */
    unsigned n;
};

struct tg_up {
    void *multi;                /* CURLM *, owned */
    struct tg_up_label *counts; /* owned, one per label seen */
    size_t n_counts;
    struct tg_loop *loop;
    uint64_t timer_due_us; /* 0: no curl timer armed */
    void **pool;           /* CURL *, owned idle easy handles, reset and ready */
    size_t n_pool;
    struct tg_list waiting; /* calls between attempts (backoff, or refused), by due time */
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
    size_t send_off; /* how much of the body went out through the read callback */
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
    long count_idx;         /* index in up->counts, -1 when not counted */
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

/* ---- upstream_call.c: a call's life ---- */

/* The transfer of call is over with err; o is what it says about the target, answered whether
 * a byte of the answer came. Decides what follows: a retry, or the end. */
void tg_up_call_ended(struct tg_up_call *call, int err, enum tg_outcome o, bool answered);

/* Runs the calls whose wait is over: their next attempt, or their end. */
void tg_up_run_waiting(struct tg_up *up);

#endif
