#ifndef TG_GATEWAY_UPSTREAM_H
#define TG_GATEWAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

struct tg_loop;
struct tg_req;
struct tg_kv;
struct tg_retry_policy;
struct tg_stream;
struct tg_upstream;

/* One worker's upstream client: a curl multi handle driven by the worker's loop, a pool of
 * reusable easy handles, and the connection cache they share (connections are kept per
 * target: curl reuses one to the same host and port). Loop thread only. */
struct tg_up;

/* One call in flight: one or more attempts (gateway/retry.h), each one transfer to one target.
 * Owned by the tg_up until its done callback has returned. */
struct tg_up_call;

/* Runs once per call, on the loop thread, when it finished, failed, timed out, was refused or
 * was cancelled. err is TG_OK when a response arrived (any status), else TG_EUPSTREAM,
 * TG_ETIMEDOUT, TG_ERESPTOOBIG (the answer passed max_body), TG_EOVERLOAD or TG_EUNSTABLE (a
 * pool refused it at once: tg_up_call_retry_after_s says when to try again), or the err it was
 * cancelled with. After retries, the call says what its last attempt got. The call is freed
 * after this returns: take what you need (tg_up_call_take_body) before. */
typedef void tg_up_done_fn(void *arg, struct tg_up_call *call, int err);

/* Asked once per call at the head of its final answer (status, and length, -1 when unknown):
 * a stream (gateway/stream.h, borrowed until done has returned) to pass the answer's body
 * through as it arrives, or NULL to hold it whole as usual. A streamed answer is never retried,
 * the call's total timeout stops at its head and its idle timeout starts (tg_up_request.idle_ms),
 * and done runs at its end: the stream is ended (TG_OK) or stopped with err by then. Runs inside
 * the transfer: no other upstream call may be started or cancelled from it. */
typedef struct tg_stream *tg_up_head_fn(void *arg, struct tg_up_call *call, int status,
                                        int64_t length);

/* What to send. Strings are borrowed for the duration of tg_up_start, except body, which must
 * stay valid until done (it normally is req->body). Two ways to say where:
 *   - upstream (a pool, borrowed from req's conf) and path: each attempt goes to a target the
 *     pool picks, behind its breaker and bulkhead, and a failed one is retried under retry;
 *   - url: one fixed absolute url, one attempt, no pool. */
struct tg_up_request {
    const char *label; /* upstream or backend name, for logs */
    const char *method;
    const struct tg_upstream *upstream;  /* the pool, or NULL for url */
    const char *path;                    /* with upstream: base path, path and query */
    const struct tg_retry_policy *retry; /* with upstream: retries; NULL = one attempt */
    const char *url;          /* without upstream: absolute, scheme://host:port/path?query */
    const struct tg_kv *hdrs; /* headers to send as they are */
    size_t n_hdrs;
    const char *body;
    size_t body_len;
    /* The rest of the body as it arrives, after body[0..body_len) (gateway/stream.h, borrowed
     * until done has returned), or NULL. With its length known the whole is sent with a
     * Content-Length, else chunked. One attempt, never resent; the total timeout counts from
     * its end (the idle timeout bounds each wait before), and done stops it when the call ends
     * before taking it all. */
    struct tg_stream *body_stream;
    tg_up_head_fn *head; /* may stream the answer's body; NULL: always held whole */
    unsigned idle_ms;    /* streamed bodies: longest wait for the next bytes, either way */
    unsigned timeout_ms; /* cap on each attempt; the request's remaining budget caps it too */
    unsigned connect_timeout_ms;
    size_t max_body;    /* answer bodies above this fail the call (TG_ERESPTOOBIG) */
    bool quiet_success; /* a first attempt that succeeds writes no upstream.done line: the
                         * request.done line says all of it (the one call of a proxy) */
};

/* A new upstream client on loop; max_connects sizes the connection cache (it must hold the
 * peak in-flight count, or connections get closed and reopened). NULL on failure (logged). */
struct tg_up *tg_up_new(struct tg_loop *loop, unsigned max_connects);

/* Frees the client. Every call must be finished or cancelled first. NULL is a no-op. */
void tg_up_free(struct tg_up *up);

/* Starts a call for req: adds the trace headers (the configured trace header, a traceparent
 * with a new span id under req's trace for each attempt, tracestate) and X-Request-Timeout-Ms
 * with the budget each attempt gets (it shrinks from attempt to attempt), links it to req
 * (req->pending, req->calls) and returns at once. done(arg, call, err) follows exactly once,
 * never from inside this function. Returns TG_OK, TG_ETIMEDOUT when no budget is left,
 * TG_ECANCELED when req is cancelled or TG_ENOMEM. Anything else (a refusal by
 * the pool, a transfer curl would not start: TG_EINTERNAL) comes through done. *out (may be
 * NULL) gets a borrowed handle valid until done returns. */
int tg_up_start(struct tg_up *up, struct tg_req *req, const struct tg_up_request *r,
                tg_up_done_fn *done, void *arg, struct tg_up_call **out) TG_MUST_CHECK;

/* An active health check of target i of u (u->hc: method, path, timeout): one attempt, tied
 * to no request, outside the breaker and ejection (the health checker keeps that state).
 * done(arg, call, err) follows once, never from inside; tg_up_call_status tells the answer.
 * u is borrowed until done. TG_OK, TG_ENOMEM or TG_EINTERNAL. */
int tg_up_probe(struct tg_up *up, const struct tg_upstream *u, size_t i, tg_up_done_fn *done,
                void *arg, struct tg_up_call **out) TG_MUST_CHECK;

/* Cancels one call: its connection is closed at once and done runs with err before this
 * returns. why (static) is the cause logged and given by tg_up_call_detail; NULL for
 * tg_err_cancel_reason(err). */
void tg_up_cancel(struct tg_up_call *call, int err, const char *why);

/* Cancels every call of req, as tg_up_cancel with the reason of err. */
void tg_up_cancel_req(struct tg_req *req, int err);

/* After completion (inside done), or inside a head hook: HTTP status, 0 when none arrived. */
int tg_up_call_status(const struct tg_up_call *call);

/* Inside a head hook: whether the call's retry rules could send it again after an answer with
 * status (budget and deadline aside), so that the answer must be held whole. */
bool tg_up_call_may_retry(const struct tg_up_call *call, int status);

/* Inside done: steals the response body (malloc'd, NUL-terminated; may be NULL when empty). */
char *tg_up_call_take_body(struct tg_up_call *call, size_t *len);

/* Inside done or a head hook: iterates the response headers; *pos starts at 0; false at the
 * end. */
bool tg_up_call_header_next(const struct tg_up_call *call, size_t *pos, const char **name,
                            const char **value);

/* The version of the libcurl loaded ("7.88.1"). Any thread. */
const char *tg_up_lib_version(void);

/* Inside done: whether the request may have reached the upstream (its head went out on a
 * connection). False only when it certainly did not: no connection, or cancelled before
 * sending. Durable delivery reads it to tell a safe resend from an ambiguous one. */
bool tg_up_call_sent(const struct tg_up_call *call);

/* Why the call failed, in a few words ("connect refused", "reset", ...), or NULL. */
const char *tg_up_call_detail(const struct tg_up_call *call);

/* After a refusal (TG_EOVERLOAD, TG_EUNSTABLE): the seconds to put in Retry-After; else 0. */
unsigned tg_up_call_retry_after_s(const struct tg_up_call *call);

/* ---- one-shot posts, for the span exporter's own thread (not the loop) ---- */

/* A reusable client for blocking POSTs (its connection is kept alive between posts). */
struct tg_up_post;

/* True when a post in progress must stop (the exporter is shutting down). */
typedef bool tg_up_post_stop_fn(void *arg);

/* A new one, or NULL when out of memory. stop(arg), when stop is not NULL, is asked about once
 * a second while a post runs; true ends it (TG_ECANCELED). */
struct tg_up_post *tg_up_post_new(tg_up_post_stop_fn *stop, void *arg);

/* POSTs len bytes of body as ctype to url and waits at most timeout_ms. TG_OK when an answer
 * came (*status gets its status, *retry_after_s its Retry-After in seconds or 0), TG_ETIMEDOUT,
 * TG_ECANCELED (stop said so) or TG_EUPSTREAM (no answer: *status is 0). Blocks: never on a
 * loop thread. */
int tg_up_post_send(struct tg_up_post *p, const char *url, const char *ctype, const char *body,
                    size_t len, unsigned timeout_ms, int *status, unsigned *retry_after_s);

/* Frees it. NULL is a no-op. */
void tg_up_post_free(struct tg_up_post *p);

#endif
