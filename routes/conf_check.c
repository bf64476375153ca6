/* The checks every route loader shares (table.c for the common keys, each handler's load for
 * its own), so that every part of a route reports the same messages. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/retry.h"
#include "routes/registry.h"
#include "routes/table.h"
#include "routes/table_internal.h"

bool tg_route_is_param_name(const char *s, size_t n)
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
size_t tg_route_bad_char(const char *s, size_t n, bool slash)
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

const struct tg_seg *tg_route_find_param(const struct tg_route *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct tg_seg *g = &r->segs[i];
        if (g->kind == TG_SEG_PARAM && g->len == n && memcmp(g->text, name, n) == 0) {
            return g;
        }
    }
    return NULL;
}

/* Index of the first byte of a fixed query string that is not allowed: RFC 3986 query
 * characters, no {param} (a client's value could add its own parameters there). */
static size_t bad_query_char(const char *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (q[i] != '?' && q[i] != '/' && tg_route_bad_char(q + i, n - i, true) == 0) {
            return i;
        }
    }
    return n;
}

int tg_route_check_template(const struct tg_route_load *rl, const char *jpath, const char *key,
                            const char *tmpl, bool allow_query)
{
    struct tg_conf_ctx *ctx = rl->ctx;
    const struct tg_route *r = rl->route;
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
        size_t lit = strcspn(p, allow_query ? "{}?" : "{}"), bad = tg_route_bad_char(p, lit, true);
        const char *close = p[lit] == '{' ? strchr(p + lit, '}') : NULL;
        size_t nlen = close != NULL ? (size_t)(close - p - lit - 1) : 0;
        if (bad < lit) {
            snprintf(why, sizeof(why), "character '%c' is not allowed", p[bad]);
        } else if (p[lit] == '\0' || p[lit] == '?') {
            break;
        } else if (close == NULL || !tg_route_is_param_name(p + lit + 1, nlen)) {
            snprintf(why, sizeof(why), "expected {name}, name [A-Za-z_][A-Za-z0-9_]*");
        } else if (tg_route_find_param(r, p + lit + 1, nlen) == NULL) {
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

int tg_route_check_method(struct tg_conf_ctx *ctx, const char *jpath, const char *m, bool any)
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

#define TG_ROUTE_UPSTREAMS_SUGGEST 256 /* upstream names a "did you mean" looks through */

int tg_route_get_upstream(const struct tg_route_load *rl, const json_t *obj, const char *jpath,
                          const struct tg_upstream **out)
{
    struct tg_conf_ctx *ctx = rl->ctx;
    const struct tg_conf *conf = rl->conf;
    char path[TG_JPATH_MAX], quoted[96];
    const char *name = NULL;
    int rc = tg_conf_get_str(ctx, obj, jpath, "upstream", true, &name);

    if (rc != TG_OK) {
        return rc;
    }
    *out = tg_conf_upstream_get(conf, name);
    if (*out == NULL) {
        const char *names[TG_ROUTE_UPSTREAMS_SUGGEST];
        size_t n = 0;
        char hint[128];
        for (size_t i = 0; i < conf->n_upstreams && n < TG_ROUTE_UPSTREAMS_SUGGEST; i++) {
            names[n++] = conf->upstreams[i].name;
        }
        return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "upstream"),
                             "unknown upstream %s%s%s", tg_jpos_quote(quoted, sizeof(quoted), name),
                             conf->n_upstreams == 0 ? " (the conf has no \"upstreams\")" : "",
                             n > 0 ? tg_conf_did_you_mean(hint, sizeof(hint), name, names, n) : "");
    }
    return TG_OK;
}

static const char *const retry_keys[] = {"max_attempts", "per_try_timeout_ms", "retry_on", NULL};

/* One entry of retry_on at jpath: a failure name or an upstream status 400..599. */
static int add_retry_on(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_retry_policy *p)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"connect-failure", TG_RETRY_CONNECT},
        {"reset", TG_RETRY_RESET},
        {"timeout", TG_RETRY_TIMEOUT},
    };
    char quoted[96];

    if (json_is_integer(v) && json_integer_value(v) >= 400 && json_integer_value(v) <= 599) {
        tg_status_set_add(&p->statuses, (int)json_integer_value(v));
        return TG_OK;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(json_string_value(v), names[i].name) == 0) {
            p->on |= names[i].bit;
            return TG_OK;
        }
    }
    return tg_conf_error(ctx, jpath,
                         "bad retry_on entry %s: expected \"connect-failure\", \"reset\", "
                         "\"timeout\" or a status 400..599",
                         json_is_string(v)
                             ? tg_jpos_quote(quoted, sizeof(quoted), json_string_value(v))
                             : tg_conf_type_name(v));
}

int tg_route_get_retry(const struct tg_route_load *rl, struct tg_retry_policy *p)
{
    struct tg_conf_ctx *ctx = rl->ctx;
    char path[TG_JPATH_MAX], opath[TG_JPATH_MAX], ipath[TG_JPATH_MAX];
    json_t *obj = NULL, *on = NULL;
    int rc = tg_conf_get_json(ctx, rl->obj, rl->jpath, "retry", JSON_OBJECT, false, &obj);

    tg_retry_policy_default(p);
    if (rc != TG_OK || obj == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "retry");
    rc = tg_conf_check_keys(ctx, obj, path, retry_keys);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "max_attempts", 1,
                                            TG_RETRY_ATTEMPTS_MAX, &p->max_attempts);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "per_try_timeout_ms", 0,
                                            TG_CONF_HOUR_MS, &p->per_try_timeout_ms);
    rc = rc != TG_OK ? rc : tg_conf_get_json(ctx, obj, path, "retry_on", JSON_ARRAY, false, &on);
    if (rc != TG_OK || on == NULL) {
        return rc;
    }
    /* a list given replaces the default one: an empty list retries nothing */
    p->on = 0;
    memset(&p->statuses, 0, sizeof(p->statuses));
    tg_jpos_path_key(opath, sizeof(opath), path, "retry_on");
    for (size_t i = 0; i < json_array_size(on); i++) {
        rc = add_retry_on(ctx, tg_jpos_path_index(ipath, sizeof(ipath), opath, i),
                          json_array_get(on, i), p);
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}

const char *tg_route_handler_keys(char *buf, size_t cap)
{
    size_t n = 0, len = 0;

    while (tg_handlers[n] != NULL) {
        n++;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + len, cap - len, "%s\"%s\"", sep, tg_handlers[i]->key);
        len += w > 0 ? (size_t)w : 0;
    }
    return buf;
}
