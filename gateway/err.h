#ifndef TG_GATEWAY_ERR_H
#define TG_GATEWAY_ERR_H

#include <stdbool.h>

/* One small return-code vocabulary: 0 is success, failures are negative. Each failure kind
 * has one HTTP status (tg_err_http_status) and one text (tg_strerror): gateway/err.c is the
 * only place either is decided. */
enum tg_err {
    TG_OK = 0,
    TG_ENOMEM = -1,
    TG_EINVAL = -2,          /* client input or conf: 400 */
    TG_ENOROUTE = -3,        /* no route for the path: 404 */
    TG_EUPSTREAM = -4,       /* upstream refused, reset or answered garbage: 502 */
    TG_ETIMEDOUT = -5,       /* the request's deadline passed waiting on an upstream: 504 */
    TG_ECANCELED = -6,       /* the client left before its answer was sent: 499 */
    TG_ETOOBIG = -7,         /* request body over its limit: 413 */
    TG_EMETHOD = -8,         /* path known, method not allowed: 405 */
    TG_EOVERLOAD = -9,       /* shedding load (max_in_flight): 503 */
    TG_ENOTIMPL = -10,       /* a transfer coding or feature the gateway does not support: 501 */
    TG_EINTERNAL = -11,      /* a bug or a library failure: 500 */
    TG_ECLIENTTIMEOUT = -12, /* the client took the budget sending its request: 408 */
    TG_EHEADERS = -13,       /* too many or too large request header fields: 431 */
    TG_ERESPTOOBIG = -14,    /* an upstream answer over its cap: 502 */
    TG_EDRAIN = -15,         /* the gateway is shutting down: 503 */
    TG_ENOTOKEN = -16,       /* a route with auth got no bearer token: 401 */
    TG_EBADTOKEN = -17,      /* the bearer token did not verify: 401 */
    TG_EFORBIDDEN = -18,     /* the token lacks a scope or the patient the route needs: 403 */
    TG_ERATELIMIT = -19,     /* the client spent its rate limit: 429 */
    TG_EPLAINTLS = -20,      /* plain HTTP sent to the TLS port: 400 */
    TG_ENOTALLOWED = -21,    /* the client's network may not use the route: 403 */
    TG_EUNSTABLE = -22,      /* the upstream's breaker throttles, or none of its targets is
                              * usable: refused at once, 503 */
    /* durable routes (routes/durable.c, the spool) */
    TG_EKEY = -23,        /* Idempotency-Key missing where required, malformed or repeated: 400 */
    TG_EINPROGRESS = -24, /* the same key's first request has not been answered yet: 409 */
    TG_EKEYREUSE = -25,   /* the same key with another request (method, path or body): 422 */
    TG_ESPOOL = -26,      /* cannot store now: disk full, quota, spool failed: 503 */
    TG_ENOTFOUND = -27,   /* no such resource (a submission id): 404 */
};

#define TG_MUST_CHECK     __attribute__((warn_unused_result))
#define TG_PRINTF(fa, va) __attribute__((format(printf, fa, va)))
#define TG_FREE(p)  \
    do {            \
        free(p);    \
        (p) = NULL; \
    } while (0)

/* Short, stable, lower-case text for an error code: what a client may read ("upstream
 * timeout"), never naming a service, host or cause. Never NULL. */
const char *tg_strerror(int err);

/* The only place that maps a failure kind to an HTTP status. */
int tg_err_http_status(int err);

/* Whether a request refused with err was malformed or ambiguous (framing, fields, target,
 * method, an unread body), so that its connection must close after the answer: nothing the
 * client sent after it may be read as a new request. */
bool tg_err_closes(int err);

/* Why work was stopped, for logs: "client left", "deadline exceeded", "gateway shutting
 * down"... Never NULL. */
const char *tg_err_cancel_reason(int err);

#endif
