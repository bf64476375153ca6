#ifndef TG_ROUTES_PROXY_H
#define TG_ROUTES_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/handler.h"
#include "gateway/retry.h"

struct tg_durable_conf;
struct tg_req;
struct tg_upstream;

/* The proxy handler's part of a route: "upstream" and the keys below. */
struct tg_proxy_conf {
    const struct tg_upstream *upstream; /* borrowed from the conf */
    char *upstream_path;                /* owned pattern, NULL = client path as is */
    bool strip_prefix;                  /* prefix routes: drop the matched prefix */
    unsigned upstream_timeout_ms;       /* per-call cap, 0 = the upstream's timeout_ms */
    struct tg_retry_policy retry;       /* "retry": when a failed attempt goes again */
    struct tg_durable_conf *durable;    /* owned, NULL: not durable (routes/durable.h) */
    bool stream;                        /* bodies above limits.stream_above_bytes (or of
                                         * unknown length) pass through as they come */
    unsigned stream_idle_timeout_ms;    /* 0 = limits.stream_idle_timeout_ms */
};

extern const struct tg_handler_ops tg_handler_proxy;

/* Builds the upstream request-target of req on a proxy route: upstream_path with {params}
 * expanded, or the prefix remainder (strip_prefix), or the client's path, after the upstream's
 * base path; the client's query follows. Writes into out (NUL-terminated). Returns the length,
 * or -1 when it does not fit. */
long tg_proxy_target(const struct tg_req *req, char *out, size_t cap);

#endif
