/* The route table: the conf's "routes" array turned into routes, each with its pattern, its
 * policy and the handler its key selects (routes/registry.c); matching is in match.c. */
#include "routes/table.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/issuer.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/handler.h"
#include "gateway/jsonpos.h"
#include "routes/registry.h"
#include "routes/security.h"
#include "routes/table_internal.h"

/* Keys every route may have, whatever its handler. */
static const char *const common_keys[] = {
    "name",
    "method",
    "path",
    "timeout_ms",
    "max_body_bytes",
    "accept_client_timeout",
    "cancel_on_disconnect",
    "expose_errors",
    "access_log",
    "log_path",
    NULL,
};

static void route_cleanup(struct tg_route *r)
{
    const struct tg_handler_ops *h = r->policy.handler;

    if (h != NULL && h->cleanup != NULL) {
        h->cleanup(r->policy.handler_conf);
    }
    tg_route_security_cleanup(&r->policy);
    for (size_t i = 0; i < r->n_segs; i++) {
        free(r->segs[i].text);
    }
    free(r->segs);
    free(r->name);
    free(r->method);
    free(r->path);
}

void tg_route_table_free(void *table)
{
    struct tg_route_table *t = table;

    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        route_cleanup(&t->routes[i]);
    }
    free(t->routes);
    free(t);
}

/* Checks one segment s (n bytes) of a route path; writes what is wrong into why. */
static void check_seg(const struct tg_route *r, const char *s, size_t n, bool last, char *why,
                      size_t cap)
{
    size_t bad;

    if (n == 0 && last && !r->prefix) {
        snprintf(why, cap, "trailing '/' (drop it, or end the path with \"/*\" for a prefix)");
    } else if (n == 0) {
        snprintf(why, cap, "empty segment");
    } else if (memchr(s, '*', n) != NULL) {
        snprintf(why, cap, "'*' is only allowed as the final segment \"/*\"");
    } else if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
        snprintf(why, cap, "\".\" and \"..\" segments are not allowed");
    } else if (s[0] == '{' && s[n - 1] == '}' && tg_route_is_param_name(s + 1, n - 2)) {
        if (tg_route_find_param(r, s + 1, n - 2) != NULL) {
            snprintf(why, cap, "parameter %.*s appears twice", (int)n, s);
        }
    } else if (memchr(s, '{', n) != NULL || memchr(s, '}', n) != NULL) {
        snprintf(why, cap, "a parameter is a whole segment {name}, name [A-Za-z_][A-Za-z0-9_]*");
    } else if ((bad = tg_route_bad_char(s, n, false)) < n) {
        snprintf(why, cap, "character '%c' is not allowed (RFC 3986 pchar only)", s[bad]);
        if (!isprint((unsigned char)s[bad])) {
            snprintf(why, cap, "byte 0x%02x is not allowed", (unsigned char)s[bad]);
        }
    }
}

/* Appends segment s (n bytes) to r's compiled pattern (r->segs has room). */
static int add_seg(struct tg_route *r, const char *s, size_t n, size_t *params)
{
    struct tg_seg *g = &r->segs[r->n_segs];
    bool param = n >= 2 && s[0] == '{';

    g->kind = param ? TG_SEG_PARAM : TG_SEG_LITERAL;
    g->len = param ? n - 2 : n;
    g->text = strndup(param ? s + 1 : s, g->len);
    if (g->text == NULL) {
        return TG_ENOMEM;
    }
    r->n_segs++;
    *params += param;
    return TG_OK;
}

/* Compiles r->path into r->segs and r->prefix; errors at jpath. "/" is one empty literal
 * segment, so that it matches the path "/" only; the bare star prefix has no segment and matches
 * any path. */
static int compile_path(struct tg_conf_ctx *ctx, const char *jpath, struct tg_route *r)
{
    const char *p = r->path;
    size_t n = strlen(p), slashes = 0, params = 0;
    char why[128] = "", quoted[96];

    for (size_t i = 0; i < n; i++) {
        slashes += p[i] == '/';
    }
    r->prefix = n >= 2 && strcmp(p + n - 2, "/*") == 0;
    n -= r->prefix ? 2 : 0;
    r->segs = calloc(slashes + 1, sizeof(*r->segs));
    if (r->segs == NULL) {
        return TG_ENOMEM;
    }
    if (p[0] != '/') {
        snprintf(why, sizeof(why), "must start with '/'");
    } else if (n == 1 && !r->prefix) {
        return add_seg(r, "", 0, &params); /* "/" */
    }
    for (size_t i = 1; why[0] == '\0' && i <= n && n > 0;) {
        const char *slash = memchr(p + i, '/', n - i);
        size_t end = slash != NULL ? (size_t)(slash - p) : n;
        check_seg(r, p + i, end - i, slash == NULL, why, sizeof(why));
        if (why[0] == '\0' && r->n_segs == TG_ROUTE_SEGS_MAX) {
            snprintf(why, sizeof(why), "more than %d segments", TG_ROUTE_SEGS_MAX);
        }
        if (why[0] == '\0' && add_seg(r, p + i, end - i, &params) != TG_OK) {
            return TG_ENOMEM;
        }
        if (why[0] == '\0' && params > TG_ROUTE_PARAMS_MAX) {
            snprintf(why, sizeof(why), "more than %d parameters", TG_ROUTE_PARAMS_MAX);
        }
        i = end + 1;
    }
    if (why[0] != '\0') {
        return tg_conf_error(ctx, jpath, "bad path %s: %s",
                             tg_jpos_quote(quoted, sizeof(quoted), r->path), why);
    }
    return TG_OK;
}

static bool in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(list[i], key) == 0) {
            return true;
        }
    }
    return false;
}

/* The handler whose key is key, or one that accepts key among its own keys (own true), or
 * NULL. */
static const struct tg_handler_ops *handler_of(const char *key, bool own)
{
    for (size_t i = 0; tg_handlers[i] != NULL; i++) {
        const struct tg_handler_ops *h = tg_handlers[i];
        if (own ? in_list(h->keys, key) : strcmp(h->key, key) == 0) {
            return h;
        }
    }
    return NULL;
}

#define ROUTE_KEYS_MAX 64

/* Every key a route may have: the common ones, then each handler's key and own keys. */
static size_t route_keys(const char **out)
{
    size_t n = 0;

    for (size_t i = 0; common_keys[i] != NULL && n < ROUTE_KEYS_MAX; i++) {
        out[n++] = common_keys[i];
    }
    for (size_t i = 0; tg_route_security_keys[i] != NULL && n < ROUTE_KEYS_MAX; i++) {
        out[n++] = tg_route_security_keys[i];
    }
    for (size_t i = 0; tg_handlers[i] != NULL && n < ROUTE_KEYS_MAX; i++) {
        out[n++] = tg_handlers[i]->key;
        for (size_t j = 0;
             tg_handlers[i]->keys != NULL && tg_handlers[i]->keys[j] != NULL && n < ROUTE_KEYS_MAX;
             j++) {
            out[n++] = tg_handlers[i]->keys[j];
        }
    }
    return n;
}

/* Every key of the route must be a common key, a handler's key, or one a handler reads; each
 * one that is not is reported, with a "did you mean". */
static int check_route_keys(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v)
{
    char path[TG_JPATH_MAX], quoted[96], hint[128];
    const char *all[ROUTE_KEYS_MAX];
    size_t n = route_keys(all);
    const char *key;
    json_t *val;
    int rc = TG_OK;

    json_object_foreach((json_t *)v, key, val)
    {
        if (!in_list(common_keys, key) && !in_list(tg_route_security_keys, key) &&
            handler_of(key, false) == NULL && handler_of(key, true) == NULL) {
            rc = tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                                   "unknown key %s%s", tg_jpos_quote(quoted, sizeof(quoted), key),
                                   tg_conf_did_you_mean(hint, sizeof(hint), key, all, n));
        }
    }
    return rc;
}

/* Picks the route's handler from which handler key is there (exactly one, in text order so
 * that an error points at the second one written), and refuses keys of other handlers. */
static int pick_handler(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        const struct tg_handler_ops **out)
{
    char path[TG_JPATH_MAX], keys[TG_ROUTE_KEY_LIST_MAX];
    const struct tg_handler_ops *h = NULL, *o;
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)v, key, val)
    {
        o = handler_of(key, false);
        if (o != NULL && h != NULL) {
            tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                              "\"%s\" and \"%s\" exclude each other: a route has exactly one of %s",
                              h->key, key, tg_route_handler_keys(keys, sizeof(keys)));
            return TG_EINVAL;
        }
        h = o != NULL ? o : h;
    }
    if (h == NULL) {
        tg_conf_error(ctx, jpath, "a route needs one of %s",
                      tg_route_handler_keys(keys, sizeof(keys)));
        return TG_EINVAL; /* spelled out: the analyzer does not follow variadic calls */
    }
    json_object_foreach((json_t *)v, key, val)
    {
        o = handler_of(key, true);
        if (o != NULL && !in_list(h->keys, key)) {
            tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                              "\"%s\" is only for routes with \"%s\"", key, o->key);
            return TG_EINVAL;
        }
    }
    *out = h;
    return TG_OK;
}

/* The route's name, method and path, compiled. */
static int load_identity(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                         struct tg_route *r)
{
    char path[TG_JPATH_MAX];
    const char *name = NULL, *method = NULL, *pattern = NULL;
    int rc = tg_conf_get_str(ctx, v, jpath, "name", false, &name);

    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "method", true, &method);
    if (rc == TG_OK) {
        rc = tg_route_check_method(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "method"),
                                   method, true);
    }
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "path", true, &pattern);
    if (rc != TG_OK) {
        return rc;
    }
    r->method = strdup(method);
    r->path = strdup(pattern);
    r->name = name != NULL ? strdup(name) : malloc(strlen(method) + strlen(pattern) + 2);
    if (r->method == NULL || r->path == NULL || r->name == NULL) {
        return TG_ENOMEM;
    }
    if (name == NULL) {
        snprintf(r->name, strlen(method) + strlen(pattern) + 2, "%s %s", method, pattern);
    }
    r->policy.name = r->name;
    r->policy.path = r->path;
    return compile_path(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "path"), r);
}

/* log_path: "raw" logs the path as the client sent it (without the query), "pattern" the
 * route's pattern, for routes whose paths carry patient ids. */
static int load_log_path(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                         struct tg_policy *p)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *s = "raw";
    int rc = tg_conf_get_str(ctx, v, jpath, "log_path", false, &s);

    if (rc != TG_OK) {
        return rc;
    }
    if (strcmp(s, "raw") != 0 && strcmp(s, "pattern") != 0) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "log_path"),
                             "bad log_path %s: expected \"raw\" or \"pattern\"",
                             tg_jpos_quote(quoted, sizeof(quoted), s));
    }
    p->log_pattern = strcmp(s, "pattern") == 0;
    return TG_OK;
}

/* The policy keys every route has. */
static int load_policy(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                       struct tg_policy *p)
{
    int rc = tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 1, TG_CONF_HOUR_MS, &p->timeout_ms);

    rc = rc != TG_OK ? rc
                     : tg_conf_get_size(ctx, v, jpath, "max_body_bytes", 0, TG_CONF_GIB,
                                        &p->max_body_bytes);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_bool(ctx, v, jpath, "accept_client_timeout", &p->accept_client_timeout);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_bool(ctx, v, jpath, "cancel_on_disconnect", &p->cancel_on_disconnect);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, v, jpath, "expose_errors", &p->expose_errors);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, v, jpath, "access_log", &p->access_log);
    return rc != TG_OK ? rc : load_log_path(ctx, jpath, v, p);
}

static int load_route(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                      const struct tg_conf *conf, struct tg_route *r)
{
    const struct tg_handler_ops *h = NULL;
    struct tg_route_load rl = {ctx, jpath, v, conf, r};
    int rc, id, picked;

    r->policy.timeout_ms = TG_ROUTE_TIMEOUT_DEFAULT;
    r->policy.max_body_bytes = conf->max_body_bytes;
    r->policy.cancel_on_disconnect = true;
    r->policy.access_log = true;
    if (!json_is_object(v)) {
        tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
        return TG_EINVAL; /* spelled out: the analyzer does not follow variadic calls */
    }
    /* Each part is read even after an error in another, so --check reports them all; the
     * handler's part only when the route has a handler and a pattern. */
    rc = check_route_keys(ctx, jpath, v);
    id = load_identity(ctx, jpath, v, r);
    rc = tg_conf_worst(rc, id);
    rc = tg_conf_worst(rc, load_policy(ctx, jpath, v, &r->policy));
    if (id == TG_OK) {
        rc = tg_conf_worst(rc, tg_route_load_security(ctx, jpath, v, conf, r));
    }
    picked = pick_handler(ctx, jpath, v, &h);
    rc = tg_conf_worst(rc, picked);
    if (id != TG_OK || picked != TG_OK) {
        return rc;
    }
    /* Set before load: a half-loaded handler conf is freed with the route. */
    r->policy.handler = h;
    return tg_conf_worst(rc, h->load(&rl, &r->policy.handler_conf));
}

/* Same pattern: same shape and literals; parameter names do not count. */
static bool same_pattern(const struct tg_route *a, const struct tg_route *b)
{
    if (a->prefix != b->prefix || a->n_segs != b->n_segs) {
        return false;
    }
    for (size_t i = 0; i < a->n_segs; i++) {
        const struct tg_seg *x = &a->segs[i], *y = &b->segs[i];
        if (x->kind != y->kind || (x->kind == TG_SEG_LITERAL &&
                                   (x->len != y->len || memcmp(x->text, y->text, x->len) != 0))) {
            return false;
        }
    }
    return true;
}

static int check_duplicates(struct tg_conf_ctx *ctx, const struct tg_route_table *t)
{
    char path[TG_JPATH_MAX], rpath[TG_JPATH_MAX], quoted[96];

    int rc = TG_OK;

    for (size_t i = 0; i < t->n; i++) {
        const struct tg_route *r = &t->routes[i];
        tg_jpos_path_index(rpath, sizeof(rpath), "routes", i);
        for (size_t j = 0; j < i && r->method != NULL && r->name != NULL; j++) {
            const struct tg_route *o = &t->routes[j];
            if (o->method == NULL || o->name == NULL) {
                continue; /* its own error was reported */
            }
            if (strcmp(r->method, o->method) == 0 && same_pattern(r, o)) {
                rc = tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), rpath, "path"),
                                   "duplicate route: same method and path pattern as "
                                   "routes[%zu] (%s)",
                                   j, tg_jpos_quote(quoted, sizeof(quoted), o->name));
                break;
            }
            if (strcmp(r->name, o->name) == 0) {
                rc = tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), rpath, "name"),
                                   "duplicate route name %s (also routes[%zu])",
                                   tg_jpos_quote(quoted, sizeof(quoted), r->name), j);
                break;
            }
        }
    }
    return rc;
}

static void auth_free(void *auth)
{
    tg_auth_free(auth);
}

/* The issuers first: routes name them. */
static int load_auth(struct tg_conf_ctx *ctx, json_t *root, struct tg_conf *conf)
{
    struct tg_auth *auth = NULL;
    int rc = tg_auth_load(ctx, json_object_get(root, "auth"), &auth);

    conf->auth = auth;
    conf->auth_free = auth_free;
    return rc;
}

/* The second pass: each handler that names other routes finds them now that all are loaded. */
static int link_routes(struct tg_conf_ctx *ctx, json_t *routes, const struct tg_conf *conf,
                       const struct tg_route_table *t)
{
    char path[TG_JPATH_MAX];

    for (size_t i = 0; i < t->n; i++) {
        const struct tg_route *r = &t->routes[i];
        struct tg_route_load rl = {ctx, tg_jpos_path_index(path, sizeof(path), "routes", i),
                                   json_array_get(routes, i), conf, r};
        int rc = r->policy.handler->link != NULL
                     ? r->policy.handler->link(&rl, r->policy.handler_conf, t)
                     : TG_OK;
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}

int tg_route_table_load(struct tg_conf_ctx *ctx, json_t *root, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX];
    struct tg_route_table *t = calloc(1, sizeof(*t));
    json_t *routes = json_object_get(root, "routes");
    size_t n = json_array_size(routes);
    int rc = load_auth(ctx, root, conf);

    if (rc != TG_OK) {
        goto out;
    }
    rc = TG_ENOMEM;
    if (t == NULL) {
        goto out;
    }
    if (routes != NULL && !json_is_array(routes)) {
        rc = tg_conf_error(ctx, "routes", "expected an array, got %s", tg_conf_type_name(routes));
        goto out;
    }
    t->routes = calloc(n + 1, sizeof(*t->routes));
    if (t->routes == NULL) {
        goto out;
    }
    rc = TG_OK;
    for (size_t i = 0; i < n; i++) {
        /* counted first so that a half-loaded route is freed with the table */
        struct tg_route *r = &t->routes[t->n++];
        rc = tg_conf_worst(rc, load_route(ctx, tg_jpos_path_index(path, sizeof(path), "routes", i),
                                          json_array_get(routes, i), conf, r));
        if (rc == TG_ENOMEM) {
            goto out;
        }
    }
    rc = tg_conf_worst(rc, check_duplicates(ctx, t));
    /* Links only between routes that all loaded: a broken route would be named twice. */
    rc = rc != TG_OK ? rc : link_routes(ctx, routes, conf, t);
    if (rc != TG_OK) {
        goto out;
    }
    conf->routes = t;
    conf->routes_free = tg_route_table_free;
    t = NULL;
out:
    tg_route_table_free(t);
    return rc;
}

size_t tg_route_table_count(const struct tg_route_table *t)
{
    return t != NULL ? t->n : 0;
}

const struct tg_route *tg_route_table_at(const struct tg_route_table *t, size_t i)
{
    return t != NULL && i < t->n ? &t->routes[i] : NULL;
}
