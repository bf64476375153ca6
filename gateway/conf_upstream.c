/* The "upstreams" section of the conf, and "ready" which names upstreams: targets, balance,
 * TLS, outlier detection, health checks, breaker and retry budget, each with FILE:LINE:COL
 * errors; then each upstream and target is bound to its shared state (gateway/pool.h). */
#include "gateway/conf_upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/pool.h"

static const char *const upstream_keys[] = {
    "url", "targets", "balance",      "timeout_ms", "connect_timeout_ms", "max_in_flight",
    "tls", "outlier", "health_check", "breaker",    "retry_budget",       NULL,
};
static const char *const target_keys[] = {"url", "weight", NULL};
static const char *const tls_keys[] = {"ca_file", "cert", "key", "verify", "server_name", NULL};
static const char *const outlier_keys[] = {
    "consecutive_failures", "base_ejection_ms", "max_ejection_ms", "max_ejected_percent", NULL,
};
static const char *const hc_keys[] = {
    "path",
    "method",
    "interval_ms",
    "idle_interval_ms",
    "timeout_ms",
    "unhealthy_threshold",
    "healthy_threshold",
    "expected_statuses",
    NULL,
};
static const char *const breaker_keys[] = {"enabled", "k", "window_ms", "min_requests", NULL};
static const char *const budget_keys[] = {"percent", "min", NULL};
static const char *const ready_keys[] = {"requires", NULL};

/* ---- urls -------------------------------------------------------------------------------- */

/* RFC 3986 pchar or '/', with '%' followed by two hex digits. Returns the bad byte or NULL. */
static const char *bad_path_char(const char *p)
{
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2])) {
                return p;
            }
            p += 2;
        } else if (!isalnum(c) && strchr("-._~!$&'()*+,;=:@/", c) == NULL) {
            return p;
        }
    }
    return NULL;
}

/* Checks "[v6]" or "[v6]:port" (n bytes, a[0] == '['); sets *colon to the port's ':' or NULL. */
static const char *bad_v6_host(const char *a, size_t n, const char **colon)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *close = memchr(a, ']', n);
    size_t hlen = close != NULL ? (size_t)(close - a - 1) : 0;

    if (close == NULL || hlen == 0 || hlen >= sizeof(host)) {
        return "bad IPv6 address";
    }
    memcpy(host, a + 1, hlen);
    host[hlen] = '\0';
    *colon = close + 1 < a + n ? close + 1 : NULL;
    if (inet_pton(AF_INET6, host, addr) != 1 || (*colon != NULL && **colon != ':')) {
        return "bad IPv6 address";
    }
    return NULL;
}

/* Checks the authority (host[:port] or [v6][:port], n bytes); returns NULL or what is wrong. */
static const char *bad_authority(const char *a, size_t n)
{
    const char *colon = NULL, *why;
    unsigned port;

    if (memchr(a, '@', n) != NULL) {
        return "user info is not supported";
    }
    if (n > 0 && a[0] == '[') {
        why = bad_v6_host(a, n, &colon);
        if (why != NULL) {
            return why;
        }
    } else {
        colon = memchr(a, ':', n);
        size_t hlen = colon != NULL ? (size_t)(colon - a) : n;
        if (hlen == 0) {
            return "missing host";
        }
        if (strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < hlen) {
            return "bad character in host";
        }
    }
    if (colon != NULL && !tg_conf_parse_port(colon + 1, (size_t)(a + n - colon - 1), 1, &port)) {
        return "bad port (expected 1..65535)";
    }
    return NULL;
}

int tg_conf_parse_url(struct tg_conf_ctx *ctx, const char *jpath, const char *url, char **origin,
                      char **base)
{
    char quoted[96];
    const char *why = NULL, *auth, *path;
    size_t plen;

    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        auth = url + (url[4] == 's' ? 8 : 7);
        path = auth + strcspn(auth, "/?#");
        if (*path == '?' || *path == '#' || strpbrk(path, "?#") != NULL) {
            why = "query and fragment are not supported";
        } else if ((why = bad_authority(auth, (size_t)(path - auth))) == NULL &&
                   bad_path_char(path) != NULL) {
            why = "bad character in path";
        }
    } else {
        why = "expected http:// or https://";
    }
    if (why != NULL) {
        return tg_conf_error(ctx, jpath, "bad url %s: %s",
                             tg_jpos_quote(quoted, sizeof(quoted), url), why);
    }
    for (plen = strlen(path); plen > 0 && path[plen - 1] == '/'; plen--) {
    }
    *origin = strndup(url, (size_t)(path - url));
    *base = strndup(path, plen);
    return *origin != NULL && *base != NULL ? TG_OK : TG_ENOMEM;
}

/* ---- targets ----------------------------------------------------------------------------- */

/* Target i of u from v (a url string, or {"url", "weight"}) at jpath. The first target sets
 * the upstream's base path; the others must have the same one. */
static int load_target(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                       struct tg_upstream *u, size_t i)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *url = NULL;
    char *base = NULL;
    struct tg_target *t = &u->targets[i];
    int rc = TG_OK;

    t->weight = 1;
    if (json_is_string(v)) {
        url = json_string_value(v);
        snprintf(path, sizeof(path), "%s", jpath);
    } else if (json_is_object(v)) {
        rc = tg_conf_check_keys(ctx, v, jpath, target_keys);
        rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, v, jpath, "url", true, &url);
        rc = rc != TG_OK
                 ? rc
                 : tg_conf_get_unsigned(ctx, v, jpath, "weight", 1, TG_TARGET_WEIGHT, &t->weight);
        tg_jpos_path_key(path, sizeof(path), jpath, "url");
    } else {
        return tg_conf_error(ctx, jpath, "expected a url or an object, got %s",
                             tg_conf_type_name(v));
    }
    if (rc != TG_OK || url == NULL) {
        return rc;
    }
    rc = tg_conf_parse_url(ctx, path, url, &t->url, &base);
    if (rc != TG_OK || base == NULL || t->url == NULL) {
        free(base);
        return rc != TG_OK ? rc : TG_ENOMEM;
    }
    if (i == 0) {
        u->base_path = base;
        base = NULL;
    } else if (strcmp(base, u->base_path) != 0) {
        rc = tg_conf_error(ctx, path,
                           "bad url %s: every target of an upstream has the same base path "
                           "(the first has \"%s\")",
                           tg_jpos_quote(quoted, sizeof(quoted), url), u->base_path);
    }
    for (size_t j = 0; rc == TG_OK && j < i; j++) {
        if (u->targets[j].url != NULL && strcmp(u->targets[j].url, t->url) == 0) {
            rc = tg_conf_error(ctx, path, "duplicate target %s (also targets[%zu])",
                               tg_jpos_quote(quoted, sizeof(quoted), t->url), j);
        }
    }
    free(base);
    return rc;
}

/* "url" (one target) or "targets" (1..TG_TARGETS_MAX), exactly one of them. */
static int load_targets(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_upstream *u)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX];
    json_t *url = json_object_get(v, "url");
    json_t *arr = json_object_get(v, "targets");
    size_t n;

    if (url != NULL && arr != NULL) {
        return tg_conf_error_key(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "targets"),
                                 "\"url\" and \"targets\" exclude each other: \"url\" is the "
                                 "one-target shorthand");
    }
    if (url == NULL && arr == NULL) {
        return tg_conf_error(ctx, jpath, "missing required key \"url\" (or \"targets\")");
    }
    if (url != NULL) {
        u->targets = calloc(1, sizeof(*u->targets));
        if (u->targets == NULL) {
            return TG_ENOMEM;
        }
        u->n_targets = 1;
        if (!json_is_string(url) || json_string_length(url) == 0) {
            const char *ignored = NULL;
            return tg_conf_get_str(ctx, v, jpath, "url", true, &ignored); /* its message */
        }
        return load_target(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "url"), url, u, 0);
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "targets");
    n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > TG_TARGETS_MAX) {
        return tg_conf_error(ctx, path, "expected an array of 1..%d targets", TG_TARGETS_MAX);
    }
    u->targets = calloc(n, sizeof(*u->targets));
    if (u->targets == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* counted first so that a half-filled target is freed with the upstream */
        u->n_targets = i + 1;
        int rc = load_target(ctx, tg_jpos_path_index(ipath, sizeof(ipath), path, i),
                             json_array_get(arr, i), u, i);
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}

static int load_balance(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_upstream *u)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *b = NULL;
    int rc = tg_conf_get_str(ctx, v, jpath, "balance", false, &b);

    if (rc != TG_OK || b == NULL || strcmp(b, "least_request") == 0) {
        return rc;
    }
    if (strcmp(b, "round_robin") == 0) {
        u->balance = TG_BALANCE_ROUND_ROBIN;
        return TG_OK;
    }
    return tg_conf_error(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "balance"),
                         "unknown balance %s: expected \"least_request\" or \"round_robin\"",
                         tg_jpos_quote(quoted, sizeof(quoted), b));
}

/* ---- tls --------------------------------------------------------------------------------- */

static bool is_dns_name(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= TG_SERVER_NAMEMAX && s[0] != '.' && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static int tls_path(struct tg_conf_ctx *ctx, const json_t *tls, const char *jpath, const char *key,
                    char **out)
{
    const char *p = NULL;
    int rc = tg_conf_get_str(ctx, tls, jpath, key, false, &p);

    return rc != TG_OK || p == NULL ? rc : tg_conf_resolve_path(ctx->file, p, out);
}

static int load_tls(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                    struct tg_upstream *u)
{
    char path[TG_JPATH_MAX], npath[TG_JPATH_MAX], quoted[96];
    json_t *tls = NULL;
    const char *name = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "tls", JSON_OBJECT, false, &tls);

    u->tls.verify = true;
    if (rc != TG_OK || tls == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "tls");
    rc = tg_conf_check_keys(ctx, tls, path, tls_keys);
    rc = rc != TG_OK ? rc : tls_path(ctx, tls, path, "ca_file", &u->tls.ca_file);
    rc = rc != TG_OK ? rc : tls_path(ctx, tls, path, "cert", &u->tls.cert);
    rc = rc != TG_OK ? rc : tls_path(ctx, tls, path, "key", &u->tls.key);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, tls, path, "verify", &u->tls.verify);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, tls, path, "server_name", false, &name);
    if (rc != TG_OK) {
        return rc;
    }
    if ((u->tls.cert == NULL) != (u->tls.key == NULL)) {
        return tg_conf_error(ctx, path, "\"cert\" and \"key\" go together (mutual TLS)");
    }
    if (name != NULL && !is_dns_name(name)) {
        return tg_conf_error(ctx, tg_jpos_path_key(npath, sizeof(npath), path, "server_name"),
                             "bad server_name %s: expected a DNS name (letters, digits, '.', '-')",
                             tg_jpos_quote(quoted, sizeof(quoted), name));
    }
    if (name != NULL && (u->tls.server_name = strdup(name)) == NULL) {
        return TG_ENOMEM;
    }
    return TG_OK;
}

/* ---- outlier detection, breaker, retry budget --------------------------------------------- */

static int load_outlier(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_outlier *o)
{
    char path[TG_JPATH_MAX];
    json_t *obj = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "outlier", JSON_OBJECT, false, &obj);

    *o = (struct tg_outlier){5, 30000, 300000, 50};
    if (rc != TG_OK || obj == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "outlier");
    rc = tg_conf_check_keys(ctx, obj, path, outlier_keys);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "consecutive_failures", 0, 1000,
                                            &o->consecutive);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "base_ejection_ms", 1, TG_CONF_HOUR_MS,
                                            &o->base_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "max_ejection_ms", 1, TG_CONF_HOUR_MS,
                                            &o->max_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, obj, path, "max_ejected_percent", 0, 100, &o->max_percent);
    if (rc == TG_OK && o->max_ms < o->base_ms) {
        char kpath[TG_JPATH_MAX];
        return tg_conf_error(ctx, tg_jpos_path_key(kpath, sizeof(kpath), path, "max_ejection_ms"),
                             "max_ejection_ms (%u) is below base_ejection_ms (%u)", o->max_ms,
                             o->base_ms);
    }
    return rc;
}

static int load_breaker(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                        struct tg_breaker_conf *b)
{
    char path[TG_JPATH_MAX];
    json_t *obj = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "breaker", JSON_OBJECT, false, &obj);

    *b = (struct tg_breaker_conf){true, 1.5, 10000, 5};
    if (rc != TG_OK || obj == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "breaker");
    rc = tg_conf_check_keys(ctx, obj, path, breaker_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(ctx, obj, path, "enabled", &b->on);
    rc = rc != TG_OK ? rc : tg_conf_get_double(ctx, obj, path, "k", 1.0, 100.0, &b->k);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, obj, path, "window_ms", 1000, 600000, &b->window_ms);
    return rc != TG_OK
               ? rc
               : tg_conf_get_unsigned(ctx, obj, path, "min_requests", 0, 100000, &b->min_requests);
}

static int load_budget(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                       struct tg_retry_budget *b)
{
    char path[TG_JPATH_MAX];
    json_t *obj = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "retry_budget", JSON_OBJECT, false, &obj);

    *b = (struct tg_retry_budget){20, 3};
    if (rc != TG_OK || obj == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, "retry_budget");
    rc = tg_conf_check_keys(ctx, obj, path, budget_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_unsigned(ctx, obj, path, "percent", 0, 100, &b->percent);
    return rc != TG_OK ? rc : tg_conf_get_unsigned(ctx, obj, path, "min", 0, 100000, &b->min);
}

/* ---- health checks ----------------------------------------------------------------------- */

static int load_statuses(struct tg_conf_ctx *ctx, const char *jpath, const json_t *arr,
                         struct tg_status_set *set)
{
    char path[TG_JPATH_MAX];
    size_t n = json_array_size(arr);

    if (n == 0) {
        return tg_conf_error(ctx, jpath, "expected a non-empty array of statuses (100..599)");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(arr, i);
        json_int_t st = json_is_integer(s) ? json_integer_value(s) : 0;
        if (st < 100 || st > 599) {
            return tg_conf_error(ctx, tg_jpos_path_index(path, sizeof(path), jpath, i),
                                 "expected a status 100..599");
        }
        tg_status_set_add(set, (int)st);
    }
    return TG_OK;
}

/* A health check request-target: '/' then visible ASCII, no fragment. */
static bool is_check_path(const char *p)
{
    if (p[0] != '/') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '#') {
            return false;
        }
    }
    return true;
}

/* The strings of the health check and its thresholds. */
static int load_hc_keys(struct tg_conf_ctx *ctx, const char *path, const json_t *obj,
                        struct tg_health_check *hc)
{
    char kpath[TG_JPATH_MAX], quoted[96];
    const char *p = NULL, *m = "GET";
    int rc = tg_conf_get_str(ctx, obj, path, "path", true, &p);

    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, obj, path, "method", false, &m);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "interval_ms", 10, TG_CONF_HOUR_MS,
                                            &hc->interval_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, obj, path, "idle_interval_ms", 10, TG_CONF_HOUR_MS,
                                            &hc->idle_interval_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, obj, path, "timeout_ms", 1, 60000, &hc->timeout_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, obj, path, "unhealthy_threshold", 1, 100, &hc->unhealthy);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, obj, path, "healthy_threshold", 1, 100, &hc->healthy);
    if (rc != TG_OK || p == NULL) {
        return rc;
    }
    if (!is_check_path(p)) {
        return tg_conf_error(ctx, tg_jpos_path_key(kpath, sizeof(kpath), path, "path"),
                             "bad path %s: expected '/' then visible ASCII characters",
                             tg_jpos_quote(quoted, sizeof(quoted), p));
    }
    if (!tg_conf_is_token(m)) {
        return tg_conf_error(ctx, tg_jpos_path_key(kpath, sizeof(kpath), path, "method"),
                             "bad method %s: expected an HTTP token",
                             tg_jpos_quote(quoted, sizeof(quoted), m));
    }
    hc->path = strdup(p);
    hc->method = strdup(m);
    return hc->path != NULL && hc->method != NULL ? TG_OK : TG_ENOMEM;
}

static int load_health_check(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                             struct tg_health_check *hc)
{
    char path[TG_JPATH_MAX], spath[TG_JPATH_MAX];
    json_t *obj = NULL, *st = NULL;
    int rc = tg_conf_get_json(ctx, v, jpath, "health_check", JSON_OBJECT, false, &obj);

    if (rc != TG_OK || obj == NULL) {
        return rc;
    }
    hc->on = true;
    hc->interval_ms = 5000;
    hc->idle_interval_ms = 60000;
    hc->timeout_ms = 1000;
    hc->unhealthy = 3;
    hc->healthy = 2;
    tg_jpos_path_key(path, sizeof(path), jpath, "health_check");
    rc = tg_conf_check_keys(ctx, obj, path, hc_keys);
    rc = rc != TG_OK ? rc : load_hc_keys(ctx, path, obj, hc);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_json(ctx, obj, path, "expected_statuses", JSON_ARRAY, false, &st);
    if (rc != TG_OK) {
        return rc;
    }
    if (st != NULL) {
        return load_statuses(ctx, tg_jpos_path_key(spath, sizeof(spath), path, "expected_statuses"),
                             st, &hc->expect);
    }
    for (int s = 200; s < 400; s++) {
        tg_status_set_add(&hc->expect, s);
    }
    return TG_OK;
}

/* ---- upstreams ------------------------------------------------------------------------------ */

/* Binds u and its targets to their shared state. */
static int bind_state(struct tg_upstream *u)
{
    u->pool = tg_pool_get(u->name);
    if (u->pool == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < u->n_targets; i++) {
        u->targets[i].state = tg_target_state_get(u->name, u->targets[i].url);
        if (u->targets[i].state == NULL) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

static int load_upstream(struct tg_conf_ctx *ctx, const char *jpath, const char *name,
                         const json_t *v, struct tg_upstream *u)
{
    int rc;

    u->timeout_ms = 5000;
    u->connect_timeout_ms = 1000;
    u->name = strdup(name);
    if (u->name == NULL) {
        return TG_ENOMEM;
    }
    if (!json_is_object(v)) {
        return tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
    }
    rc = tg_conf_check_keys(ctx, v, jpath, upstream_keys);
    rc = rc != TG_OK ? rc : load_targets(ctx, jpath, v, u);
    rc = rc != TG_OK ? rc : load_balance(ctx, jpath, v, u);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 1, TG_CONF_HOUR_MS,
                                            &u->timeout_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, v, jpath, "connect_timeout_ms", 1, 60000,
                                            &u->connect_timeout_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, v, jpath, "max_in_flight", 0, 1000000, &u->max_in_flight);
    rc = rc != TG_OK ? rc : load_tls(ctx, jpath, v, u);
    rc = rc != TG_OK ? rc : load_outlier(ctx, jpath, v, &u->outlier);
    rc = rc != TG_OK ? rc : load_health_check(ctx, jpath, v, &u->hc);
    rc = rc != TG_OK ? rc : load_breaker(ctx, jpath, v, &u->breaker);
    rc = rc != TG_OK ? rc : load_budget(ctx, jpath, v, &u->budget);
    if (rc != TG_OK) {
        return rc;
    }
    u->url = strdup(u->targets[0].url);
    return u->url == NULL ? TG_ENOMEM : bind_state(u);
}

int tg_conf_upstreams_load(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX], quoted[96];
    json_t *ups = NULL, *v;
    const char *name;
    int rc = tg_conf_get_json(ctx, root, "", "upstreams", JSON_OBJECT, false, &ups);

    if (rc != TG_OK || ups == NULL) {
        return rc;
    }
    conf->upstreams = calloc(json_object_size(ups) + 1, sizeof(*conf->upstreams));
    if (conf->upstreams == NULL) {
        return TG_ENOMEM;
    }
    json_object_foreach(ups, name, v)
    {
        tg_jpos_path_key(path, sizeof(path), "upstreams", name);
        if (!tg_conf_is_name(name)) {
            rc = tg_conf_error_key(ctx, path,
                                   "bad upstream name %s: expected 1..%d characters of "
                                   "[A-Za-z0-9_-]",
                                   tg_jpos_quote(quoted, sizeof(quoted), name), TG_CONF_NAME_MAX);
            continue;
        }
        /* counted first so that a half-filled entry is freed with the conf; a bad one is still
         * known by name, so routes naming it get no second error. Each upstream is read even
         * after an error in another: --check reports them all. */
        rc = tg_conf_worst(
            rc, load_upstream(ctx, path, name, v, &conf->upstreams[conf->n_upstreams++]));
        if (rc == TG_ENOMEM) {
            return rc;
        }
    }
    return rc;
}

void tg_conf_upstream_cleanup(struct tg_upstream *u)
{
    for (size_t i = 0; i < u->n_targets; i++) {
        free(u->targets[i].url);
        tg_target_state_put(u->targets[i].state);
    }
    TG_FREE(u->targets);
    u->n_targets = 0;
    TG_FREE(u->name);
    TG_FREE(u->url);
    TG_FREE(u->base_path);
    TG_FREE(u->tls.ca_file);
    TG_FREE(u->tls.cert);
    TG_FREE(u->tls.key);
    TG_FREE(u->tls.server_name);
    TG_FREE(u->hc.method);
    TG_FREE(u->hc.path);
    tg_pool_put(u->pool);
    u->pool = NULL;
}

/* ---- ready ------------------------------------------------------------------------------- */

int tg_conf_ready_load(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX], quoted[96];
    json_t *ready = NULL, *req = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "ready", JSON_OBJECT, false, &ready);

    rc = rc != TG_OK || ready == NULL ? rc : tg_conf_check_keys(ctx, ready, "ready", ready_keys);
    rc = rc != TG_OK || ready == NULL
             ? rc
             : tg_conf_get_json(ctx, ready, "ready", "requires", JSON_ARRAY, false, &req);
    if (rc != TG_OK || req == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), "ready", "requires");
    conf->ready_requires = calloc(json_array_size(req) + 1, sizeof(const struct tg_upstream *));
    if (conf->ready_requires == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < json_array_size(req); i++) {
        const json_t *v = json_array_get(req, i);
        const struct tg_upstream *u =
            json_is_string(v) ? tg_conf_upstream_get(conf, json_string_value(v)) : NULL;
        tg_jpos_path_index(ipath, sizeof(ipath), path, i);
        if (!json_is_string(v)) {
            return tg_conf_error(ctx, ipath, "expected an upstream name, got %s",
                                 tg_conf_type_name(v));
        }
        if (u == NULL) {
            return tg_conf_error(ctx, ipath, "unknown upstream %s",
                                 tg_jpos_quote(quoted, sizeof(quoted), json_string_value(v)));
        }
        conf->ready_requires[conf->n_ready_requires++] = u;
    }
    return TG_OK;
}

/* ---- files ------------------------------------------------------------------------------- */

static int check_file(const char *up, const char *key, const char *file, char *err, size_t errlen)
{
    int fd;

    if (file == NULL) {
        return TG_OK;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "upstreams.%s.tls.%s: %s: %m", up, key, file);
        return TG_EINVAL;
    }
    close(fd);
    return TG_OK;
}

int tg_conf_upstream_files_check(const struct tg_conf *conf, char *err, size_t errlen)
{
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        const struct tg_upstream *u = &conf->upstreams[i];
        if (check_file(u->name, "ca_file", u->tls.ca_file, err, errlen) != TG_OK ||
            check_file(u->name, "cert", u->tls.cert, err, errlen) != TG_OK ||
            check_file(u->name, "key", u->tls.key, err, errlen) != TG_OK) {
            return TG_EINVAL;
        }
    }
    return TG_OK;
}
