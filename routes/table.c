#include "routes/table.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "routes/table_internal.h"

#define GIB     1073741824u
#define HOUR_MS 3600000u
#define MIB     1048576u

static const char *const route_keys[] = {
    "name",
    "method",
    "path",
    "upstream",
    "upstream_path",
    "strip_prefix",
    "timeout_ms",
    "upstream_timeout_ms",
    "max_body_bytes",
    "accept_client_timeout",
    "cancel_on_disconnect",
    "backends",
    "max_merged_bytes",
    "local",
    NULL,
};
static const char *const backend_keys[] = {
    "name", "upstream", "path", "method", "required", "timeout_ms", "max_body_bytes", NULL,
};
static const char *const kind_keys[] = {"upstream", "backends", "local"};

static void route_cleanup(struct tg_route *r)
{
    for (size_t i = 0; i < r->n_segs; i++) {
        free(r->segs[i].text);
    }
    for (size_t i = 0; i < r->n_backends; i++) {
        free(r->backends[i].name);
        free(r->backends[i].path);
        free(r->backends[i].method);
    }
    free(r->segs);
    free(r->backends);
    free(r->name);
    free(r->method);
    free(r->path);
    free(r->upstream_path);
    free(r->local);
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

static bool is_param_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
            return false;
        }
    }
    return true;
}

/* Index of the first byte of s (n bytes) that is not an RFC 3986 pchar (or '/' when slash), a
 * '%' counting only with two hex digits after it; n when all are fine. */
static size_t bad_char(const char *s, size_t n, bool slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            i += 2;
        } else if (c == '%' ||
                   (!isalnum(c) && strchr("-._~!$&'()+,;=:@", c) == NULL && !(slash && c == '/'))) {
            return i;
        }
    }
    return n;
}

static const struct tg_seg *find_param(const struct tg_route *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct tg_seg *g = &r->segs[i];
        if (g->kind == TG_SEG_PARAM && g->len == n && memcmp(g->text, name, n) == 0) {
            return g;
        }
    }
    return NULL;
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
    } else if (s[0] == '{' && s[n - 1] == '}' && is_param_name(s + 1, n - 2)) {
        if (find_param(r, s + 1, n - 2) != NULL) {
            snprintf(why, cap, "parameter %.*s appears twice", (int)n, s);
        }
    } else if (memchr(s, '{', n) != NULL || memchr(s, '}', n) != NULL) {
        snprintf(why, cap, "a parameter is a whole segment {name}, name [A-Za-z_][A-Za-z0-9_]*");
    } else if ((bad = bad_char(s, n, false)) < n) {
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

/* Index of the first byte of a fixed query string that is not allowed: RFC 3986 query
 * characters, no {param} (a client's value could add its own parameters there). */
static size_t bad_query_char(const char *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (q[i] != '?' && q[i] != '/' && bad_char(q + i, n - i, true) == 0) {
            return i;
        }
    }
    return n;
}

/* Checks an upstream path template (upstream_path, a backend's path): a path whose {name}
 * parts must all be parameters of r's pattern, then an optional fixed query string. */
static int check_template(struct tg_conf_ctx *ctx, const char *jpath, const char *key,
                          const char *tmpl, const struct tg_route *r, bool allow_query)
{
    char why[160] = "", quoted[96], rquoted[96];
    const char *p = tmpl;
    /* A proxy route appends the client's query, so only backends may carry one of their own. */
    const char *query = allow_query ? strchr(tmpl, '?') : NULL;
    size_t path_end = query != NULL ? (size_t)(query - tmpl) : strlen(tmpl);

    if (p[0] != '/') {
        snprintf(why, sizeof(why), "must start with '/'");
    } else if (query != NULL && bad_query_char(query + 1, strlen(query + 1)) < strlen(query + 1)) {
        snprintf(why, sizeof(why), "character '%c' is not allowed in the query",
                 query[1 + bad_query_char(query + 1, strlen(query + 1))]);
    }
    while (why[0] == '\0' && (size_t)(p - tmpl) < path_end) {
        size_t lit = strcspn(p, allow_query ? "{}?" : "{}"), bad = bad_char(p, lit, true);
        const char *close = p[lit] == '{' ? strchr(p + lit, '}') : NULL;
        size_t nlen = close != NULL ? (size_t)(close - p - lit - 1) : 0;
        if (bad < lit) {
            snprintf(why, sizeof(why), "character '%c' is not allowed", p[bad]);
        } else if (p[lit] == '\0' || p[lit] == '?') {
            break;
        } else if (close == NULL || !is_param_name(p + lit + 1, nlen)) {
            snprintf(why, sizeof(why), "expected {name}, name [A-Za-z_][A-Za-z0-9_]*");
        } else if (find_param(r, p + lit + 1, nlen) == NULL) {
            return tg_conf_error(ctx, jpath,
                                 "unknown parameter {%.*s} in %s: the route path %s "
                                 "has no such parameter",
                                 (int)nlen, p + lit + 1, key,
                                 tg_jpos_quote(rquoted, sizeof(rquoted), r->path));
        } else {
            p = close + 1;
        }
    }
    if (why[0] != '\0') {
        return tg_conf_error(ctx, jpath, "bad %s %s: %s", key,
                             tg_jpos_quote(quoted, sizeof(quoted), tmpl), why);
    }
    return TG_OK;
}

/* A method: an upper-case HTTP token, or "*" when any is true. */
static int check_method(struct tg_conf_ctx *ctx, const char *jpath, const char *m, bool any)
{
    char quoted[96];
    bool ok = tg_conf_is_token(m);

    for (const char *c = m; ok && *c != '\0'; c++) {
        ok = !islower((unsigned char)*c);
    }
    if (strcmp(m, "*") == 0) {
        ok = any; /* '*' is a token character, but here it means "any method" */
    }
    if (!ok) {
        return tg_conf_error(ctx, jpath, "bad method %s: expected an upper-case HTTP token%s",
                             tg_jpos_quote(quoted, sizeof(quoted), m), any ? " or \"*\"" : "");
    }
    return TG_OK;
}

/* Resolves an upstream name found at obj[key]. */
static int get_upstream(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                        const struct tg_conf *conf, const struct tg_upstream **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *name = NULL;
    int rc = tg_conf_get_str(ctx, obj, jpath, "upstream", true, &name);

    if (rc != TG_OK) {
        return rc;
    }
    *out = tg_conf_upstream_get(conf, name);
    if (*out == NULL) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "upstream"),
                             "unknown upstream %s%s", tg_jpos_quote(quoted, sizeof(quoted), name),
                             conf->n_upstreams == 0 ? " (the conf has no \"upstreams\")" : "");
    }
    return TG_OK;
}

static int load_proxy(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                      const struct tg_conf *conf, struct tg_route *r)
{
    char path[TG_JPATH_MAX];
    const char *up_path = NULL;
    int rc = get_upstream(ctx, v, jpath, conf, &r->upstream);

    if (rc == TG_OK) {
        rc = tg_conf_get_str(ctx, v, jpath, "upstream_path", false, &up_path);
    }
    if (rc == TG_OK && up_path != NULL) {
        tg_jpos_path_key(path, sizeof(path), jpath, "upstream_path");
        if (r->prefix) {
            /* it would replace the whole path: what follows the prefix would be lost */
            return tg_conf_error(ctx, path,
                                 "upstream_path is only for exact routes (a prefix "
                                 "route forwards the client path, or with "
                                 "strip_prefix the part after the prefix)");
        }
        rc = check_template(ctx, path, "upstream_path", up_path, r, false);
        r->upstream_path = rc == TG_OK ? strdup(up_path) : NULL;
        rc = rc == TG_OK && r->upstream_path == NULL ? TG_ENOMEM : rc;
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_bool(ctx, v, jpath, "strip_prefix", &r->strip_prefix);
    }
    if (rc != TG_OK || !r->strip_prefix) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "strip_prefix");
    if (!r->prefix) {
        return tg_conf_error(ctx, path,
                             "strip_prefix needs a prefix route (a path ending in "
                             "\"/*\")");
    }
    return TG_OK;
}

static int load_backend(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        const struct tg_conf *conf, struct tg_route *r, struct tg_backend *b)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *name = NULL, *bpath = NULL, *method = "GET";
    int rc;

    b->required = true;
    b->max_body_bytes = MIB;
    if (!json_is_object(v)) {
        return tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
    }
    rc = tg_conf_check_keys(ctx, v, jpath, backend_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "name", true, &name);
    if (rc == TG_OK && (!tg_conf_is_name(name) || name[0] == '_')) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "name"),
                             "bad backend name %s: expected 1..%d characters of [A-Za-z0-9_-], "
                             "not starting with '_' (reserved for \"_errors\")",
                             tg_jpos_quote(quoted, sizeof(quoted), name), TG_CONF_NAME_MAX);
    }
    rc = rc != TG_OK ? rc : get_upstream(ctx, v, jpath, conf, &b->upstream);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "path", true, &bpath);
    if (rc == TG_OK) {
        rc = check_template(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "path"), "path", bpath,
                            r, true);
    }
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "method", false, &method);
    if (rc == TG_OK) {
        rc =
            check_method(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "method"), method, false);
    }
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, v, jpath, "required", &b->required);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 0, HOUR_MS, &b->timeout_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_size(ctx, v, jpath, "max_body_bytes", 1, GIB, &b->max_body_bytes);
    if (rc != TG_OK) {
        return rc;
    }
    b->name = strdup(name);
    b->path = strdup(bpath);
    b->method = strdup(method);
    return b->name != NULL && b->path != NULL && b->method != NULL ? TG_OK : TG_ENOMEM;
}

static int load_fanout(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                       const struct tg_conf *conf, struct tg_route *r)
{
    char path[TG_JPATH_MAX], bpath[TG_JPATH_MAX], quoted[96];
    json_t *arr = NULL;
    size_t n;
    int rc = tg_conf_get_json(ctx, v, jpath, "backends", JSON_ARRAY, true, &arr);

    if (rc != TG_OK) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "backends");
    n = json_array_size(arr);
    if (n == 0 || n > TG_FANOUT_MAX) {
        return tg_conf_error(ctx, path, "expected 1..%d backends, got %zu", TG_FANOUT_MAX, n);
    }
    r->backends = calloc(n, sizeof(*r->backends));
    if (r->backends == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct tg_backend *b = &r->backends[r->n_backends++];
        tg_jpos_path_index(bpath, sizeof(bpath), path, i);
        rc = load_backend(ctx, bpath, json_array_get(arr, i), conf, r, b);
        for (size_t j = 0; rc == TG_OK && j < i; j++) {
            if (strcmp(r->backends[j].name, b->name) == 0) {
                return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), bpath, "name"),
                                     "duplicate backend name %s (also backends[%zu])",
                                     tg_jpos_quote(quoted, sizeof(quoted), b->name), j);
            }
        }
        if (rc != TG_OK) {
            return rc;
        }
    }
    return tg_conf_get_size(ctx, v, jpath, "max_merged_bytes", 1, GIB, &r->max_merged_bytes);
}

static int load_local(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                      struct tg_route *r)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *local = NULL;
    int rc = tg_conf_get_str(ctx, v, jpath, "local", true, &local);

    if (rc != TG_OK) {
        return rc;
    }
    if (strcmp(local, "health") != 0 && strcmp(local, "ready") != 0 &&
        strcmp(local, "metrics") != 0) {
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "local"),
                             "unknown local handler %s: expected \"health\", \"ready\" or "
                             "\"metrics\"",
                             tg_jpos_quote(quoted, sizeof(quoted), local));
    }
    r->local = strdup(local);
    return r->local != NULL ? TG_OK : TG_ENOMEM;
}

/* Fails at key when obj has it but the route is not of the kind that uses it. */
static int kind_only(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     bool ok, const char *kind_key)
{
    char path[TG_JPATH_MAX];

    if (ok || json_object_get(obj, key) == NULL) {
        return TG_OK;
    }
    return tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                             "\"%s\" is only for routes with \"%s\"", key, kind_key);
}

/* Picks the route kind from which of "upstream", "backends" or "local" is there (exactly one)
 * and loads the keys of that kind. */
static int load_kind(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                     const struct tg_conf *conf, struct tg_route *r)
{
    char path[TG_JPATH_MAX];
    const char *key;
    json_t *val;
    int kind = -1, rc;

    /* in text order (jansson keeps it), so that the error points at the second one written */
    json_object_foreach((json_t *)v, key, val)
    {
        int k = 0;
        while (k < 3 && strcmp(kind_keys[k], key) != 0) {
            k++;
        }
        if (k < 3 && kind >= 0) {
            return tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                                     "\"%s\" and \"%s\" exclude each other: a route has exactly "
                                     "one of \"upstream\", \"backends\" or \"local\"",
                                     kind_keys[kind], key);
        }
        kind = k < 3 ? k : kind;
    }
    if (kind < 0) {
        return tg_conf_error(ctx, jpath,
                             "a route needs one of \"upstream\", \"backends\" or "
                             "\"local\"");
    }
    r->kind = kind == 0 ? TG_ROUTE_PROXY : kind == 1 ? TG_ROUTE_FANOUT : TG_ROUTE_LOCAL;
    rc = kind_only(ctx, v, jpath, "upstream_path", kind == 0, "upstream");
    rc = rc != TG_OK ? rc : kind_only(ctx, v, jpath, "strip_prefix", kind == 0, "upstream");
    rc = rc != TG_OK ? rc : kind_only(ctx, v, jpath, "max_merged_bytes", kind == 1, "backends");
    if (rc != TG_OK) {
        return rc;
    }
    if (kind == 0) {
        return load_proxy(ctx, jpath, v, conf, r);
    }
    return kind == 1 ? load_fanout(ctx, jpath, v, conf, r) : load_local(ctx, jpath, v, r);
}

static int load_route(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                      const struct tg_conf *conf, struct tg_route *r)
{
    char path[TG_JPATH_MAX];
    const char *name = NULL, *method = NULL, *pattern = NULL;
    int rc;

    r->timeout_ms = 5000;
    r->max_body_bytes = conf->max_body_bytes;
    r->cancel_on_disconnect = true;
    r->max_merged_bytes = (size_t)4 * MIB;
    if (!json_is_object(v)) {
        tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
        return TG_EINVAL; /* spelled out: the analyzer does not follow variadic calls */
    }
    rc = tg_conf_check_keys(ctx, v, jpath, route_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "name", false, &name);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "method", true, &method);
    if (rc == TG_OK) {
        rc = check_method(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "method"), method, true);
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
    rc = compile_path(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "path"), r);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 1, HOUR_MS, &r->timeout_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, v, jpath, "upstream_timeout_ms", 0, HOUR_MS,
                                            &r->upstream_timeout_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_size(ctx, v, jpath, "max_body_bytes", 0, GIB, &r->max_body_bytes);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_bool(ctx, v, jpath, "accept_client_timeout", &r->accept_client_timeout);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_bool(ctx, v, jpath, "cancel_on_disconnect", &r->cancel_on_disconnect);
    return rc != TG_OK ? rc : load_kind(ctx, jpath, v, conf, r);
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

    for (size_t i = 0; i < t->n; i++) {
        const struct tg_route *r = &t->routes[i];
        tg_jpos_path_index(rpath, sizeof(rpath), "routes", i);
        for (size_t j = 0; j < i; j++) {
            const struct tg_route *o = &t->routes[j];
            if (strcmp(r->method, o->method) == 0 && same_pattern(r, o)) {
                return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), rpath, "path"),
                                     "duplicate route: same method and path pattern as "
                                     "routes[%zu] (%s)",
                                     j, tg_jpos_quote(quoted, sizeof(quoted), o->name));
            }
            if (strcmp(r->name, o->name) == 0) {
                return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), rpath, "name"),
                                     "duplicate route name %s (also routes[%zu])",
                                     tg_jpos_quote(quoted, sizeof(quoted), r->name), j);
            }
        }
    }
    return TG_OK;
}

int tg_route_table_load(struct tg_conf_ctx *ctx, json_t *routes, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX];
    struct tg_route_table *t = calloc(1, sizeof(*t));
    size_t n = json_array_size(routes);
    int rc = TG_ENOMEM;

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
    for (size_t i = 0; i < n; i++) {
        /* counted first so that a half-loaded route is freed with the table */
        struct tg_route *r = &t->routes[t->n++];
        rc = load_route(ctx, tg_jpos_path_index(path, sizeof(path), "routes", i),
                        json_array_get(routes, i), conf, r);
        if (rc != TG_OK) {
            goto out;
        }
    }
    rc = check_duplicates(ctx, t);
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
