#ifndef TG_ROUTES_TABLE_H
#define TG_ROUTES_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct tg_conf;
struct tg_conf_ctx;
struct tg_upstream;

#define TG_ROUTE_PARAMS_MAX 8
#define TG_FANOUT_MAX       16
#define TG_ROUTE_SEGS_MAX   32 /* segments in a route path pattern */

enum tg_route_kind {
    TG_ROUTE_PROXY = 0,  /* one upstream */
    TG_ROUTE_FANOUT = 1, /* several backends, JSON merged */
    TG_ROUTE_LOCAL = 2,  /* answered by the gateway: health, ready, metrics */
};

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

enum tg_seg_kind {
    TG_SEG_LITERAL = 0,
    TG_SEG_PARAM = 1,
};

struct tg_seg {
    enum tg_seg_kind kind;
    char *text; /* owned: literal text, or the parameter name */
    size_t len;
};

struct tg_route {
    char *name;   /* owned: conf "name", or "METHOD path" */
    char *method; /* owned: "GET", ..., or "*" for any */
    char *path;   /* owned: pattern as written */
    enum tg_route_kind kind;
    const struct tg_upstream *upstream; /* proxy: borrowed */
    char *upstream_path;                /* proxy: owned pattern, NULL = client path as is */
    bool strip_prefix;                  /* prefix routes: drop the matched prefix */
    char *local;                        /* local: owned "health" | "ready" | "metrics" */
    unsigned timeout_ms;                /* total budget (default 5000) */
    unsigned upstream_timeout_ms;       /* per-call cap, 0 = the upstream's timeout_ms */
    size_t max_body_bytes;              /* default: limits.max_body_bytes */
    bool accept_client_timeout;         /* honour X-Request-Timeout-Ms / grpc-timeout */
    bool cancel_on_disconnect;          /* default true */
    struct tg_backend *backends;        /* fanout: owned array */
    size_t n_backends;
    size_t max_merged_bytes; /* fanout: cap on the merged body (default 4 MiB) */
    struct tg_seg *segs;     /* owned compiled pattern */
    size_t n_segs;
    bool prefix; /* pattern ends in a slash and a star */
};

struct tg_route_param {
    const char *name;  /* borrowed from the route */
    const char *value; /* borrowed from the matched path: raw, still percent-encoded */
    size_t len;
};

struct tg_route_match {
    const struct tg_route *route; /* borrowed */
    struct tg_route_param params[TG_ROUTE_PARAMS_MAX];
    size_t n_params;
    const char *rest; /* prefix routes: the path after the prefix, starting with '/' or empty */
    size_t rest_len;
};

struct tg_route_table; /* opaque */

/* tg_conf_routes_fn for tg_conf_load: parses the "routes" array into conf->routes. */
int tg_route_table_load(struct tg_conf_ctx *ctx, json_t *routes, struct tg_conf *conf);

/* Frees a table made by tg_route_table_load (NULL is a no-op). */
void tg_route_table_free(void *table);

/* Finds the route for method and the raw path (no query; path_len bytes). Returns TG_OK and
 * fills m; TG_ENOROUTE when no pattern matches the path (or it does not start with '/');
 * TG_EMETHOD when patterns match the path but none allows the method; TG_EINVAL when a segment
 * of the path is "." or ".." (also percent-encoded): the gateway does not forward paths that
 * could climb out of a prefix. Among the routes that match and allow the method, the most
 * specific wins (rule in routes/match.c and conf/README.md). Does not allocate; any thread. */
int tg_route_table_match(const struct tg_route_table *t, const char *method, const char *path,
                         size_t path_len, struct tg_route_match *m);

/* Writes the methods allowed for path as "GET, POST" into buf (NUL-terminated, truncated to
 * cap). Returns the length written. */
size_t tg_route_table_allow(const struct tg_route_table *t, const char *path, size_t path_len,
                            char *buf, size_t cap);

/* Substitutes {param} in pattern with the matched values. Returns the length written (without
 * NUL), or -1 when it does not fit in cap or names an unknown parameter. */
long tg_route_expand(const char *pattern, const struct tg_route_match *m, char *out, size_t cap);

/* Number of routes and the i-th one, for listing and tests. */
size_t tg_route_table_count(const struct tg_route_table *t);
const struct tg_route *tg_route_table_at(const struct tg_route_table *t, size_t i);

#endif
