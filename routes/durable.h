#ifndef TG_ROUTES_DURABLE_H
#define TG_ROUTES_DURABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/err.h"

struct tg_req;
struct tg_route;
struct tg_route_load;
struct tg_route_table;

/* Durable submissions on a POST proxy route (its "durable" block): the request is stored in the
 * spool (fsync'd) before any answer, then delivered (routes/deliver.c) until the backend takes
 * it, refuses it, or max_age passes. The client gets the backend's own answer when it came within
 * sync_wait_ms, else 202 with Location (the status route, routes/submission.c) and Retry-After.
 * Idempotency-Key (the IETF draft) makes a retry safe: the first answer again, byte for byte. */

#define TG_DURABLE_STORE_MAX 16 /* client headers a route may store */

enum tg_durable_mode {
    TG_DURABLE_ON_FAILURE = 0, /* store, try at once for sync_wait_ms, else 202 */
    TG_DURABLE_ALWAYS = 1,     /* store, 202 at once, deliver in the background */
};

/* The backoff and age of deliveries. */
struct tg_durable_retry {
    unsigned base_ms; /* full jitter: the nth wait is random in 0..min(cap, base*2^n) */
    unsigned cap_ms;
    unsigned max_age_s;          /* undelivered past this: dead (kept for an operator) */
    unsigned attempt_timeout_ms; /* one attempt's budget */
    int *on_status;              /* owned: statuses tried again (5xx always are) */
    size_t n_on_status;
};

/* A route's "durable" block (struct tg_proxy_conf.durable). Owned by the route. */
struct tg_durable_conf {
    enum tg_durable_mode mode;
    unsigned sync_wait_ms;
    bool require_key;       /* 400 without an Idempotency-Key (else one is made and echoed) */
    char *forward_key_as;   /* owned: the header each attempt carries the key in */
    char *key_scope_header; /* owned, may be NULL: keys are unique per its value */
    char *order_by_header;  /* owned, may be NULL: per its value, delivered in acceptance order */
    bool hold_dead;         /* on_dead "hold": a dead record blocks its order key */
    bool backend_dedup;     /* false: never resend after an ambiguous outcome (-> unknown) */
    int *duplicate_status;  /* owned: statuses that mean "I have it already": delivered */
    size_t n_duplicate_status;
    char **store_headers; /* owned: client headers kept with the submission and forwarded */
    size_t n_store_headers;
    struct tg_durable_retry retry;
    unsigned delivery_concurrency; /* background attempts in flight for the route */
    unsigned drain_rps;            /* background attempts started per second */
    const char *status_path;       /* the status route's path (borrowed from it, set when linked) */
};

/* Loads rl's "durable" block into *out (NULL when the route has none). Needs a POST route and
 * the conf's "spool" block. TG_OK or TG_EINVAL with a FILE:LINE:COL error. */
int tg_durable_load(const struct tg_route_load *rl, struct tg_durable_conf **out) TG_MUST_CHECK;

/* Frees what load made. NULL is a no-op. */
void tg_durable_free(struct tg_durable_conf *dc);

/* Once every route is loaded: finds the status route that names this one (a route with
 * "submissions": "<this route's name>") and takes its path for Location. TG_EINVAL when there
 * is none. */
int tg_durable_link(const struct tg_route_load *rl, struct tg_durable_conf *dc,
                    const struct tg_route_table *t) TG_MUST_CHECK;

/* The durable route's conf of the route named name in t, or NULL. */
const struct tg_durable_conf *tg_durable_of(const struct tg_route_table *t, const char *name,
                                            const struct tg_route **route);

/* Serves a request on a durable route (the proxy hands it over): TG_MW_ASYNC while the spool
 * and the first attempt work, or TG_MW_DONE with an error answer. Loop thread. */
int tg_durable_serve(struct tg_req *req);

/* The client left or the gateway drains: the request stops waiting (what was stored stays
 * stored and is delivered). Loop thread. */
void tg_durable_cancel(struct tg_req *req, int err);

/* Reads an Idempotency-Key value (len bytes): an sf-string ("...") or a bare token, 1..255
 * characters of [A-Za-z0-9._:-] once unquoted. Writes it NUL-terminated into out (256 bytes).
 * TG_OK or TG_EKEY. */
int tg_durable_parse_key(const char *value, size_t len, char *out) TG_MUST_CHECK;

/* How an attempt ended, as delivery records it (enum tg_attempt_outcome of gateway/stats.h):
 * status is the backend's (0 when none came), sent whether any of the request may have reached
 * it (a connection that failed before sending is not). A retry outcome becomes unknown where
 * the backend cannot deduplicate and the request may have reached it. */
int tg_durable_classify(const struct tg_durable_conf *dc, int status, bool sent);

/* Full jitter: a random wait in 0..min(cap_ms, base_ms * 2^(attempt-1)) ms, at least 1. */
unsigned tg_durable_backoff_ms(const struct tg_durable_retry *r, unsigned attempt);

#endif
