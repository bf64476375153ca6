#ifndef TG_ROUTES_FANOUT_H
#define TG_ROUTES_FANOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/handler.h"
#include "gateway/retry.h"

struct tg_upstream;

#define TG_FANOUT_MAX 16

/* One call of a fan-out route. */
struct tg_backend {
    char *name;                         /* owned: key in the merged JSON */
    const struct tg_upstream *upstream; /* borrowed from the conf */
    char *path;                         /* owned: upstream path pattern with {param} */
    char *method;                       /* owned: default "GET" */
    bool required;                      /* default true */
    unsigned timeout_ms;                /* 0 = the upstream's cap */
    size_t max_body_bytes;              /* cap on this backend's answer (default 1 MiB) */
};

/* The fan-out handler's part of a route: "backends" and "max_merged_bytes". */
struct tg_fanout_conf {
    struct tg_backend *backends; /* owned array */
    size_t n_backends;
    size_t max_merged_bytes;      /* cap on the merged body (default 4 MiB) */
    struct tg_retry_policy retry; /* "retry": each backend call's attempts */
};

extern const struct tg_handler_ops tg_handler_fanout;

#endif
