#include "gateway/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/err.h"
#include "gateway/file.h"
#include "gateway/jsonpos.h"

/* a conf is a few KiB; anything this big is a mistake */
#define CONF_FILE_MAX ((size_t)16 * 1024 * 1024)
#define TOKEN_MAX_LEN 64

static const char *const top_keys[] = {
    "listen", "workers", "trace",     "limits", "shutdown_grace_ms",
    "tls",    "spool",   "upstreams", "routes", NULL,
};
static const char *const trace_keys[] = {"header", "accept", NULL};
static const char *const limits_keys[] = {
    "max_connections",   "max_body_bytes",          "max_response_bytes",
    "client_timeout_ms", "connection_buffer_bytes", NULL,
};
static const char *const tls_keys[] = {"cert", "key", NULL};
static const char *const upstream_keys[] = {
    "url", "timeout_ms", "connect_timeout_ms", "max_in_flight", NULL,
};

/* Parses a decimal port in lo..65535 from s (n bytes): digits only, no sign or spaces. */
static bool parse_port(const char *s, size_t n, unsigned lo, unsigned *port)
{
    unsigned v = 0;

    if (n == 0 || n > 5) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < lo || v > 65535) {
        return false;
    }
    *port = v;
    return true;
}

static int load_listen(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    char host[INET6_ADDRSTRLEN + 1], quoted[96];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *s = "0.0.0.0:8080", *h, *port, *close;
    size_t hlen;
    bool v6;
    int rc = tg_conf_get_str(ctx, root, "", "listen", false, &s);

    if (rc != TG_OK) {
        return rc;
    }
    v6 = s[0] == '[';
    close = v6 ? strchr(s, ']') : strrchr(s, ':');
    if (close == NULL || (v6 && close[1] != ':')) {
        goto bad;
    }
    h = v6 ? s + 1 : s;
    hlen = (size_t)(close - h);
    port = v6 ? close + 2 : close + 1;
    if (hlen == 0 || hlen >= sizeof(host)) {
        goto bad;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1 ||
        !parse_port(port, strlen(port), 0, &conf->port)) {
        goto bad;
    }
    conf->listen_host = strdup(host);
    return conf->listen_host != NULL ? TG_OK : TG_ENOMEM;
bad:
    return tg_conf_error(ctx, "listen",
                         "bad listen address %s: expected \"IPv4:port\" or \"[IPv6]:port\" with a "
                         "numeric address and a port in 0..65535",
                         tg_jpos_quote(quoted, sizeof(quoted), s));
}

/* A header name: an HTTP token of at most TOKEN_MAX_LEN characters, at jpath. */
static int check_header_name(struct tg_conf_ctx *ctx, const char *jpath, const char *name)
{
    char quoted[96];

    if (!tg_conf_is_token(name) || strlen(name) > TOKEN_MAX_LEN) {
        return tg_conf_error(ctx, jpath,
                             "bad header name %s: expected an HTTP token (letters, digits, "
                             "!#$%%&'*+-.^_`|~) of at most %d characters",
                             tg_jpos_quote(quoted, sizeof(quoted), name), TOKEN_MAX_LEN);
    }
    return TG_OK;
}

static int load_accept(struct tg_conf_ctx *ctx, const json_t *accept, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX], quoted[96];
    size_t n = json_array_size(accept);
    int rc;

    if (n > TG_TRACE_ACCEPT_MAX) {
        return tg_conf_error(ctx, "trace.accept", "too many header names: %zu (at most %d)", n,
                             TG_TRACE_ACCEPT_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(accept, i);
        const char *name;
        tg_jpos_path_index(path, sizeof(path), "trace.accept", i);
        if (!json_is_string(v)) {
            return tg_conf_error(ctx, path, "expected a string, got %s", tg_conf_type_name(v));
        }
        name = json_string_value(v);
        rc = check_header_name(ctx, path, name);
        if (rc != TG_OK) {
            return rc;
        }
        /* header names are case-insensitive: a repeat is a typo, not a second name */
        bool dup = strcasecmp(name, conf->trace_header) == 0;
        for (size_t j = 0; j < conf->n_trace_accept && !dup; j++) {
            dup = strcasecmp(name, conf->trace_accept[j]) == 0;
        }
        if (dup) {
            return tg_conf_error(ctx, path, "header name %s is already accepted",
                                 tg_jpos_quote(quoted, sizeof(quoted), name));
        }
        conf->trace_accept[i] = strdup(name);
        if (conf->trace_accept[i] == NULL) {
            return TG_ENOMEM;
        }
        conf->n_trace_accept = i + 1;
    }
    return TG_OK;
}

static int load_trace(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *trace = NULL, *accept = NULL;
    const char *header = "X-Trace-Id";
    int rc = tg_conf_get_json(ctx, root, "", "trace", JSON_OBJECT, false, &trace);

    if (rc == TG_OK && trace != NULL) {
        rc = tg_conf_check_keys(ctx, trace, "trace", trace_keys);
        if (rc == TG_OK) {
            rc = tg_conf_get_str(ctx, trace, "trace", "header", false, &header);
        }
        if (rc == TG_OK) {
            rc = check_header_name(ctx, "trace.header", header);
        }
        if (rc == TG_OK) {
            rc = tg_conf_get_json(ctx, trace, "trace", "accept", JSON_ARRAY, false, &accept);
        }
    }
    if (rc != TG_OK) {
        return rc;
    }
    conf->trace_header = strdup(header);
    if (conf->trace_header == NULL) {
        return TG_ENOMEM;
    }
    return accept != NULL ? load_accept(ctx, accept, conf) : TG_OK;
}

static int load_limits(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *lim = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "limits", JSON_OBJECT, false, &lim);

    if (rc != TG_OK || lim == NULL) {
        return rc;
    }
    rc = tg_conf_check_keys(ctx, lim, "limits", limits_keys);
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, lim, "limits", "max_connections", 1, 1000000,
                                  &conf->max_connections);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_size(ctx, lim, "limits", "max_body_bytes", 0, TG_CONF_GIB,
                              &conf->max_body_bytes);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_size(ctx, lim, "limits", "max_response_bytes", 1, TG_CONF_GIB,
                              &conf->max_response_bytes);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, lim, "limits", "client_timeout_ms", 1, TG_CONF_HOUR_MS,
                                  &conf->client_timeout_ms);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_size(ctx, lim, "limits", "connection_buffer_bytes", 4096, 1048576,
                              &conf->connection_buffer_bytes);
    }
    return rc;
}

int tg_conf_path(const char *conf_file, const char *p, char **out)
{
    const char *slash = strrchr(conf_file, '/');
    size_t dlen = slash != NULL && p[0] != '/' ? (size_t)(slash - conf_file) + 1 : 0;
    size_t plen = strlen(p);

    *out = malloc(dlen + plen + 1);
    if (*out == NULL) {
        return TG_ENOMEM;
    }
    memcpy(*out, conf_file, dlen);
    memcpy(*out + dlen, p, plen + 1);
    return TG_OK;
}

static int load_tls(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *tls = NULL;
    const char *cert = NULL, *key = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "tls", JSON_OBJECT, false, &tls);

    if (rc != TG_OK || tls == NULL) {
        return rc;
    }
    rc = tg_conf_check_keys(ctx, tls, "tls", tls_keys);
    if (rc == TG_OK) {
        rc = tg_conf_get_str(ctx, tls, "tls", "cert", true, &cert);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_str(ctx, tls, "tls", "key", true, &key);
    }
    if (rc != TG_OK || cert == NULL || key == NULL) {
        return rc; /* both are required: NULL only with an error */
    }
    /* Not opened here: the server reads them at startup and reports a bad file there. */
    rc = tg_conf_path(ctx->file, cert, &conf->tls_cert);
    return rc == TG_OK ? tg_conf_path(ctx->file, key, &conf->tls_key) : rc;
}

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
    if (colon != NULL && !parse_port(colon + 1, (size_t)(a + n - colon - 1), 1, &port)) {
        return "bad port (expected 1..65535)";
    }
    return NULL;
}

/* Splits an upstream url into its origin (up->url) and base path (up->base_path). */
static int parse_url(struct tg_conf_ctx *ctx, const char *jpath, const char *url,
                     struct tg_upstream *up)
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
    up->url = strndup(url, (size_t)(path - url));
    up->base_path = strndup(path, plen);
    return up->url != NULL && up->base_path != NULL ? TG_OK : TG_ENOMEM;
}

static int load_upstream(struct tg_conf_ctx *ctx, const char *jpath, const char *name,
                         const json_t *v, struct tg_upstream *up)
{
    char path[TG_JPATH_MAX];
    const char *url = NULL;
    int rc;

    up->timeout_ms = 5000;
    up->connect_timeout_ms = 1000;
    up->name = strdup(name);
    if (up->name == NULL) {
        return TG_ENOMEM;
    }
    if (!json_is_object(v)) {
        return tg_conf_error(ctx, jpath, "expected an object, got %s", tg_conf_type_name(v));
    }
    rc = tg_conf_check_keys(ctx, v, jpath, upstream_keys);
    if (rc == TG_OK) {
        rc = tg_conf_get_str(ctx, v, jpath, "url", true, &url);
    }
    if (rc == TG_OK) {
        rc = parse_url(ctx, tg_jpos_path_key(path, sizeof(path), jpath, "url"), url, up);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, v, jpath, "timeout_ms", 1, TG_CONF_HOUR_MS, &up->timeout_ms);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, v, jpath, "connect_timeout_ms", 1, 60000,
                                  &up->connect_timeout_ms);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, v, jpath, "max_in_flight", 0, 1000000, &up->max_in_flight);
    }
    return rc;
}

static int load_upstreams(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
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
            return tg_conf_error_key(ctx, path,
                                     "bad upstream name %s: expected 1..%d characters of "
                                     "[A-Za-z0-9_-]",
                                     tg_jpos_quote(quoted, sizeof(quoted), name), TG_CONF_NAME_MAX);
        }
        /* counted first so that a half-filled entry is freed with the conf */
        rc = load_upstream(ctx, path, name, v, &conf->upstreams[conf->n_upstreams++]);
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}

/* Everything but the routes, in the order of the README. */
static int load_settings(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    int rc;

    if (!json_is_object(root)) {
        return tg_conf_error(ctx, "", "expected the conf to be an object, got %s",
                             tg_conf_type_name(root));
    }
    rc = tg_conf_check_keys(ctx, root, "", top_keys);
    if (rc == TG_OK) {
        rc = load_listen(ctx, root, conf);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, root, "", "workers", 0, 64, &conf->workers);
    }
    if (rc == TG_OK) {
        rc = load_trace(ctx, root, conf);
    }
    if (rc == TG_OK) {
        rc = load_limits(ctx, root, conf);
    }
    if (rc == TG_OK) {
        rc = tg_conf_get_unsigned(ctx, root, "", "shutdown_grace_ms", 0, 600000,
                                  &conf->shutdown_grace_ms);
    }
    if (rc == TG_OK) {
        rc = load_tls(ctx, root, conf);
    }
    if (rc == TG_OK) {
        rc = tg_conf_load_spool(ctx, root, conf);
    }
    if (rc == TG_OK) {
        rc = load_upstreams(ctx, root, conf);
    }
    return rc;
}

/* Parses text with jansson. A duplicate key is reported at the repeated key, with the index. */
static int parse_json(struct tg_conf_ctx *ctx, const char *text, size_t len, json_t **root)
{
    json_error_t jerr;
    const char *path;
    int line, col, fline = 0, fcol = 0;

    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root != NULL) {
        return TG_OK;
    }
    if (json_error_code(&jerr) == json_error_duplicate_key) {
        int rc = tg_jpos_first_dup(ctx->pos, &path, &line, &col);
        if (rc == TG_ENOMEM) {
            return rc;
        }
        if (rc == TG_OK && tg_jpos_find_key(ctx->pos, path, &fline, &fcol) == TG_OK) {
            snprintf(ctx->err, sizeof(ctx->err),
                     "%s:%d:%d: duplicate key, first defined at line %d column %d (at %.*s)",
                     ctx->file, line, col, fline, fcol, TG_JPATH_MAX, path);
            return TG_EINVAL;
        }
    }
    snprintf(ctx->err, sizeof(ctx->err), "%s:%d:%d: %s", ctx->file, jerr.line, jerr.column,
             jerr.text);
    return TG_EINVAL;
}

static void conf_free(struct tg_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    if (conf->routes != NULL && conf->routes_free != NULL) {
        conf->routes_free(conf->routes);
    }
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        struct tg_upstream *up = &conf->upstreams[i];
        free(up->name);
        free(up->url);
        free(up->base_path);
    }
    free(conf->upstreams);
    for (size_t i = 0; i < conf->n_trace_accept; i++) {
        free(conf->trace_accept[i]);
    }
    free(conf->file);
    free(conf->listen_host);
    free(conf->trace_header);
    free(conf->tls_cert);
    free(conf->tls_key);
    tg_conf_spool_free(conf->spool);
    free(conf);
}

static struct tg_conf *conf_new(const char *file)
{
    struct tg_conf *conf = calloc(1, sizeof(*conf));

    if (conf == NULL) {
        return NULL;
    }
    conf->file = strdup(file);
    if (conf->file == NULL) {
        free(conf);
        return NULL;
    }
    conf->port = 8080;
    conf->max_connections = 10000;
    conf->max_body_bytes = 1048576;
    conf->max_response_bytes = 16777216;
    conf->client_timeout_ms = 30000;
    conf->connection_buffer_bytes = 16384;
    conf->shutdown_grace_ms = 10000;
    atomic_init(&conf->refs, 1);
    return conf;
}

int tg_conf_load(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out, char *err,
                 size_t errlen)
{
    struct tg_conf_ctx ctx = {.file = file};
    struct tg_jpos *pos = NULL;
    struct tg_conf *conf = NULL;
    json_t *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = tg_file_read(ctx.file, CONF_FILE_MAX, &text, &len, ctx.err, sizeof(ctx.err));
    if (rc != TG_OK) {
        goto out;
    }
    rc = TG_ENOMEM;
    pos = tg_jpos_build(text, len);
    conf = conf_new(file);
    if (pos == NULL || conf == NULL) {
        goto out;
    }
    ctx.pos = pos;
    rc = parse_json(&ctx, text, len, &root);
    if (rc == TG_OK) {
        rc = load_settings(&ctx, root, conf);
    }
    if (rc == TG_OK && load_routes != NULL) {
        rc = load_routes(&ctx, json_object_get(root, "routes"), conf);
    }
    if (rc == TG_OK) {
        *out = conf;
        conf = NULL;
    }
out:
    if (rc == TG_ENOMEM && ctx.err[0] == '\0') {
        snprintf(ctx.err, sizeof(ctx.err), "%s: out of memory", file);
    }
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", rc == TG_OK ? "" : ctx.err);
    }
    conf_free(conf);
    json_decref(root);
    tg_jpos_free(pos);
    free(text);
    return rc;
}

const struct tg_upstream *tg_conf_upstream_get(const struct tg_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        if (strcmp(conf->upstreams[i].name, name) == 0) {
            return &conf->upstreams[i];
        }
    }
    return NULL;
}

struct tg_conf *tg_conf_ref(struct tg_conf *conf)
{
    if (conf != NULL) {
        atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    }
    return conf;
}

void tg_conf_unref(struct tg_conf *conf)
{
    /* acq_rel: the last holder must see every other holder's writes before freeing */
    if (conf != NULL && atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel) == 1) {
        conf_free(conf);
    }
}
