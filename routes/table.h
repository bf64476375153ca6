#ifndef TG_ROUTES_TABLE_H
#define TG_ROUTES_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "gateway/req.h"

struct tg_conf;
struct tg_conf_ctx;
struct tg_upstream;

#define TG_ROUTE_PARAMS_MAX      8
#define TG_ROUTE_SEGS_MAX        32   /* segments in a route path pattern */
#define TG_ROUTE_TIMEOUT_DEFAULT 5000 /* ms: a route's total budget unless it says */
#define TG_ROUTE_KEY_LIST_MAX    160  /* "\"upstream\", \"backends\" or \"local\"" and such */

enum tg_seg_kind {
    TG_SEG_LITERAL = 0,
    TG_SEG_PARAM = 1,
};

struct tg_seg {
    enum tg_seg_kind kind;
    char *text; /* owned: literal text, or the parameter name */
    size_t len;
};

/* One route: the pattern it matches and the policy its requests read. The handler's own part
 * of the route is policy.handler_conf, owned here and freed by the handler's cleanup. */
struct tg_route {
    struct tg_policy policy; /* policy.name points at name */
    char *name;              /* owned: conf "name", or "METHOD path" */
    char *method;            /* owned: "GET", ..., or "*" for any */
    char *path;              /* owned: pattern as written */
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

/* What a handler's load reads (gateway/handler.h): the route object at jpath, the conf being
 * loaded (its upstreams), and the route's common part, already loaded (pattern, policy). */
struct tg_route_load {
    struct tg_conf_ctx *ctx;
    const char *jpath;
    const json_t *obj;
    const struct tg_conf *conf;
    const struct tg_route *route;
};

struct tg_route_table; /* opaque */

/* tg_conf_routes_fn for tg_conf_load: parses the "auth" section into conf->auth (the issuers
 * routes name), then the "routes" array of root into conf->routes. Each route has exactly one
 * handler key (routes/registry.c lists the handlers). */
int tg_route_table_load(struct tg_conf_ctx *ctx, json_t *root, struct tg_conf *conf);

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

/* ---- for handlers' load (routes/conf_check.c): the same checks and messages everywhere ---- */

/* Resolves the upstream named at obj["upstream"] (obj at jpath) in rl->conf. TG_OK or
 * TG_EINVAL with the error set. */
int tg_route_get_upstream(const struct tg_route_load *rl, const json_t *obj, const char *jpath,
                          const struct tg_upstream **out);

/* Checks an upstream path template at jpath (the value of key): a path whose {name} parts are
 * all parameters of the route's pattern, then, when allow_query, a fixed query string. */
int tg_route_check_template(const struct tg_route_load *rl, const char *jpath, const char *key,
                            const char *tmpl, bool allow_query);

struct tg_retry_policy;

/* The route's "retry" object (routes that call upstreams: max_attempts, per_try_timeout_ms,
 * retry_on) into *p, the defaults of gateway/retry.h where absent. TG_OK or TG_EINVAL with the
 * error set. */
int tg_route_get_retry(const struct tg_route_load *rl, struct tg_retry_policy *p);

/* A method at jpath: an upper-case HTTP token, or "*" when any is true. */
int tg_route_check_method(struct tg_conf_ctx *ctx, const char *jpath, const char *m, bool any);

/* Writes the handler keys as "\"upstream\", \"backends\" or \"local\"" into buf. */
const char *tg_route_handler_keys(char *buf, size_t cap);

#endif
