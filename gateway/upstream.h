#ifndef TG_GATEWAY_UPSTREAM_H
#define TG_GATEWAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

struct tg_loop;
struct tg_req;
struct tg_kv;

/* One worker's upstream client: a curl multi handle driven by the worker's loop, a pool of
 * reusable easy handles, and the connection cache they share. Loop thread only. */
struct tg_up;

/* One call in flight. Owned by the tg_up until its done callback has returned. */
struct tg_up_call;

/* Runs once per call, on the loop thread, when it finished, failed, timed out or was
 * cancelled. err is TG_OK when a response arrived (any status), else TG_EUPSTREAM,
 * TG_ETIMEDOUT, TG_ERESPTOOBIG (the answer passed max_body), or the err it was cancelled with. The
 * call is freed after this returns: take what you need (tg_up_call_take_body) before. */
typedef void tg_up_done_fn(void *arg, struct tg_up_call *call, int err);

/* What to send. Strings are borrowed for the duration of tg_up_start, except body, which must
 * stay valid until done (it normally is req->body). */
struct tg_up_request {
    const char *label; /* upstream or backend name, for logs */
    const char *method;
    const char *url;          /* absolute: scheme://host:port/path?query */
    const struct tg_kv *hdrs; /* headers to send as they are */
    size_t n_hdrs;
    const char *body;
    size_t body_len;
    unsigned timeout_ms; /* cap on this call; the request's remaining budget caps it too */
    unsigned connect_timeout_ms;
    size_t max_body;        /* answer bodies above this fail the call (TG_ERESPTOOBIG) */
    const char *limit_key;  /* what max_in_flight counts: the upstream's name */
    unsigned max_in_flight; /* calls under limit_key in flight on this worker; 0 = none */
};

/* A new upstream client on loop; max_connects sizes the connection cache (it must hold the
 * peak in-flight count, or connections get closed and reopened). NULL on failure (logged). */
struct tg_up *tg_up_new(struct tg_loop *loop, unsigned max_connects);

/* Frees the client. Every call must be finished or cancelled first. NULL is a no-op. */
void tg_up_free(struct tg_up *up);

/* Starts a call for req: adds the trace headers (the configured trace header, a traceparent
 * with a new span id under req's trace, tracestate) and X-Request-Timeout-Ms with the budget it
 * gets, links it to req (req->pending, req->calls) and returns at once. done(arg, call, err)
 * follows exactly once, never from inside this function. Returns TG_OK, TG_ETIMEDOUT when no
 * budget is left, TG_ECANCELED when req is cancelled, TG_EOVERLOAD when max_in_flight calls under
 * limit_key already run on this worker, TG_ENOMEM or TG_EINTERNAL. *out (may be
 * NULL) gets a borrowed handle valid until done returns. */
int tg_up_start(struct tg_up *up, struct tg_req *req, const struct tg_up_request *r,
                tg_up_done_fn *done, void *arg, struct tg_up_call **out) TG_MUST_CHECK;

/* Cancels one call: its connection is closed at once and done runs with err before this
 * returns. why (static) is the cause logged and given by tg_up_call_detail; NULL for
 * tg_err_cancel_reason(err). */
void tg_up_cancel(struct tg_up_call *call, int err, const char *why);

/* Cancels every call of req, as tg_up_cancel with the reason of err. */
void tg_up_cancel_req(struct tg_req *req, int err);

/* After completion (inside done): HTTP status, 0 when none arrived. */
int tg_up_call_status(const struct tg_up_call *call);

/* Inside done: steals the response body (malloc'd, NUL-terminated; may be NULL when empty). */
char *tg_up_call_take_body(struct tg_up_call *call, size_t *len);

/* Inside done: iterates the response headers; *pos starts at 0; false at the end. */
bool tg_up_call_header_next(const struct tg_up_call *call, size_t *pos, const char **name,
                            const char **value);

/* Inside done: whether the request may have reached the upstream (its head went out on a
 * connection). False only when it certainly did not: no connection, or cancelled before
 * sending. Durable delivery reads it to tell a safe resend from an ambiguous one. */
bool tg_up_call_sent(const struct tg_up_call *call);

/* Why the call failed, in a few words ("connect refused", "reset", ...), or NULL. */
const char *tg_up_call_detail(const struct tg_up_call *call);

#endif
