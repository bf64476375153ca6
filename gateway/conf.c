#include "gateway/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/digest.h"
#include "gateway/err.h"
#include "gateway/file.h"
#include "gateway/jsonpos.h"
#include "gateway/netaddr.h"
#include "gateway/tls.h"

/* a conf is a few KiB; anything this big is a mistake */
#define CONF_FILE_MAX ((size_t)16 * 1024 * 1024)
#define TOKEN_MAX_LEN 64
#define TLS_PEM_MAX   ((size_t)1 << 20) /* a certificate chain or key file */

static const char *const top_keys[] = {
    "listen", "reuse_port", "workers",
    "trace",  "limits",     "shutdown_grace_ms",
    "tls",    "admin",      "otlp",
    "ready",  "upstreams",  "routes",
    "auth",   "audit",      "trusted_proxies",
    "spool",  NULL,
};
static const char *const otlp_keys[] = {
    "endpoint", "sample_ratio", "queue_size", "batch_size", "batch_timeout_ms", "timeout_ms", NULL,
};
static const char *const admin_keys[] = {"listen", NULL};
static const char *const trace_keys[] = {"header", "accept", NULL};
static const char *const limits_keys[] = {
    "max_connections",         "max_body_bytes",
    "max_response_bytes",      "client_timeout_ms",
    "connection_buffer_bytes", "max_header_bytes",
    "stream_above_bytes",      "stream_buffer_bytes",
    "stream_idle_timeout_ms",  NULL,
};
static const char *const tls_keys[] = {"cert", "key", "min_version", "priorities", NULL};
static const char *const audit_keys[] = {"file", "flush_ms", NULL};
/* Parses s ("IPv4:port" or "[IPv6]:port", numeric) at jpath into *host (strdup'd) and *port. */
static int parse_listen(struct tg_conf_ctx *ctx, const char *jpath, const char *s, char **host_out,
                        unsigned *port_out)
{
    char host[INET6_ADDRSTRLEN + 1], quoted[96];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *h, *port, *close;
    size_t hlen;
    bool v6 = s[0] == '[';

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
        !tg_conf_parse_port(port, strlen(port), 0, port_out)) {
        goto bad;
    }
    *host_out = strdup(host);
    return *host_out != NULL ? TG_OK : TG_ENOMEM;
bad:
    return tg_conf_error(ctx, jpath,
                         "bad listen address %s: expected \"IPv4:port\" or \"[IPv6]:port\" with a "
                         "numeric address and a port in 0..65535",
                         tg_jpos_quote(quoted, sizeof(quoted), s));
}

static int load_listen(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    const char *s = "0.0.0.0:8080";
    int rc = tg_conf_get_str(ctx, root, "", "listen", false, &s);

    return rc != TG_OK ? rc : parse_listen(ctx, "listen", s, &conf->listen_host, &conf->port);
}

/* otlp: where spans go (the URL is checked like an upstream's) and how they are batched. */
static int load_otlp(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *o = NULL;
    const char *endpoint = NULL;
    char *origin = NULL, *base = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "otlp", JSON_OBJECT, false, &o);

    if (rc != TG_OK || o == NULL) {
        return rc;
    }
    rc = tg_conf_check_keys(ctx, o, "otlp", otlp_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, o, "otlp", "endpoint", false, &endpoint);
    if (rc == TG_OK && endpoint != NULL) {
        rc = tg_conf_parse_url(ctx, "otlp.endpoint", endpoint, &origin, &base);
        free(origin);
        free(base);
        conf->otlp_endpoint = rc == TG_OK ? strdup(endpoint) : NULL;
        rc = rc == TG_OK && conf->otlp_endpoint == NULL ? TG_ENOMEM : rc;
    }
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_double(ctx, o, "otlp", "sample_ratio", 0, 1, &conf->otlp_sample_ratio);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, o, "otlp", "queue_size", 16, 1000000,
                                            &conf->otlp_queue_size);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(ctx, o, "otlp", "batch_size", 1, 65536, &conf->otlp_batch_size);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, o, "otlp", "batch_timeout_ms", 1, 600000,
                                            &conf->otlp_batch_timeout_ms);
    return rc != TG_OK ? rc
                       : tg_conf_get_unsigned(ctx, o, "otlp", "timeout_ms", 1, 600000,
                                              &conf->otlp_timeout_ms);
}

/* admin.listen: the admin listener's address, or "off". */
static int load_admin(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *admin = NULL;
    const char *s = "127.0.0.1:9901";
    int rc = tg_conf_get_json(ctx, root, "", "admin", JSON_OBJECT, false, &admin);

    if (rc == TG_OK && admin != NULL) {
        rc = tg_conf_check_keys(ctx, admin, "admin", admin_keys);
        if (rc == TG_OK) {
            rc = tg_conf_get_str(ctx, admin, "admin", "listen", false, &s);
        }
    }
    if (rc != TG_OK || strcmp(s, "off") == 0) {
        return rc;
    }
    return parse_listen(ctx, "admin.listen", s, &conf->admin_host, &conf->admin_port);
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

/* The largest request head answered by the gateway itself: by default the connection buffer
 * less TG_HEAD_RESERVE, what the answer's own head needs there. libmicrohttpd 0.9.75 keeps a
 * request's head and its answer's head in one buffer: a head that leaves too little room cannot
 * be answered at all (the connection closes), so the gateway refuses it first, with its JSON
 * 431. */
static int load_max_header(struct tg_conf_ctx *ctx, const json_t *lim, struct tg_conf *conf)
{
    size_t most = conf->connection_buffer_bytes - TG_HEAD_RESERVE;
    int rc;

    conf->max_header_bytes = most;
    rc = tg_conf_get_size(ctx, lim, "limits", "max_header_bytes", 1024, TG_CONF_GIB,
                          &conf->max_header_bytes);
    if (rc == TG_OK && conf->max_header_bytes > most) {
        return tg_conf_error(ctx, "limits.max_header_bytes",
                             "%zu leaves no room for the answer's head in a connection buffer of "
                             "%zu bytes: at most %zu (or raise limits.connection_buffer_bytes)",
                             conf->max_header_bytes, conf->connection_buffer_bytes, most);
    }
    return rc;
}

/* Streamed bodies: above which size, through how large a ring, and how long a stall may last.
 * The ring takes a whole libcurl chunk (16 KiB) at least twice over. */
static int load_stream_limits(struct tg_conf_ctx *ctx, const json_t *lim, struct tg_conf *conf)
{
    int rc = tg_conf_get_size(ctx, lim, "limits", "stream_above_bytes", 0, TG_CONF_GIB,
                              &conf->stream_above_bytes);

    rc = rc != TG_OK ? rc
                     : tg_conf_get_size(ctx, lim, "limits", "stream_buffer_bytes", 32768,
                                        16 * (size_t)TG_CONF_MIB, &conf->stream_buffer_bytes);
    return rc != TG_OK ? rc
                       : tg_conf_get_unsigned(ctx, lim, "limits", "stream_idle_timeout_ms", 1,
                                              TG_CONF_HOUR_MS, &conf->stream_idle_timeout_ms);
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
    rc = rc == TG_OK ? load_max_header(ctx, lim, conf) : rc;
    return rc != TG_OK ? rc : load_stream_limits(ctx, lim, conf);
}

int tg_conf_resolve_path(const char *conf_file, const char *p, char **out)
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

/* --check: the PEM file at path (from the key at jpath) can be read and holds a block whose
 * label ends with what ("CERTIFICATE", "PRIVATE KEY"). The server parses it at start. */
static int open_pem(struct tg_conf_ctx *ctx, const char *jpath, const char *path, const char *what)
{
    char *text = NULL, err[512], begin[64];
    size_t len = 0;
    int rc;

    if (tg_file_read(path, TLS_PEM_MAX, &text, &len, err, sizeof(err)) != TG_OK) {
        return tg_conf_error(ctx, jpath, "%s", err);
    }
    snprintf(begin, sizeof(begin), "%s-----", what);
    rc = strstr(text, "-----BEGIN ") != NULL && strstr(text, begin) != NULL
             ? TG_OK
             : tg_conf_error(ctx, jpath, "%s: no PEM %s in it", path, what);
    free(text);
    return rc;
}

/* "min_version" ("1.2", the default, or "1.3") and "priorities" (GnuTLS syntax, default
 * "NORMAL") make one priority string, checked by GnuTLS now. */
static int load_tls_policy(struct tg_conf_ctx *ctx, const json_t *tls, struct tg_conf *conf)
{
    char prio[TG_TLS_PRIORITY_MAX], err[256], quoted[96];
    const char *min = "1.2", *base = "NORMAL";
    unsigned version;
    int rc = tg_conf_get_str(ctx, tls, "tls", "min_version", false, &min);

    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, tls, "tls", "priorities", false, &base);
    if (rc != TG_OK) {
        return rc;
    }
    if (strcmp(min, "1.2") != 0 && strcmp(min, "1.3") != 0) {
        return tg_conf_error(ctx, "tls.min_version", "expected \"1.2\" or \"1.3\", got %s",
                             tg_jpos_quote(quoted, sizeof(quoted), min));
    }
    version = strcmp(min, "1.3") == 0 ? 13 : 12;
    if (tg_tls_priorities(base, version, prio, sizeof(prio), err, sizeof(err)) != TG_OK) {
        return tg_conf_error(ctx, "tls.priorities", "%s", err);
    }
    conf->tls_priorities = strdup(prio);
    return conf->tls_priorities != NULL ? TG_OK : TG_ENOMEM;
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
    rc = load_tls_policy(ctx, tls, conf);
    rc = rc != TG_OK ? rc : tg_conf_resolve_path(ctx->file, cert, &conf->tls_cert);
    rc = rc != TG_OK ? rc : tg_conf_resolve_path(ctx->file, key, &conf->tls_key);
    if (rc == TG_OK && ctx->open_files) {
        rc = open_pem(ctx, "tls.cert", conf->tls_cert, "CERTIFICATE");
        rc = tg_conf_worst(rc, open_pem(ctx, "tls.key", conf->tls_key, "PRIVATE KEY"));
    }
    return rc;
}

#define TRUSTED_PROXIES_MAX 64

/* "trusted_proxies": address ranges of the balancers in front, whose X-Forwarded-For names the
 * client. */
static int load_trusted(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    char path[TG_JPATH_MAX], quoted[96];
    json_t *arr = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "trusted_proxies", JSON_ARRAY, false, &arr);

    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    if (json_array_size(arr) > TRUSTED_PROXIES_MAX) {
        return tg_conf_error(ctx, "trusted_proxies", "at most %d ranges", TRUSTED_PROXIES_MAX);
    }
    conf->trusted_proxies = calloc(json_array_size(arr) + 1, sizeof(*conf->trusted_proxies));
    if (conf->trusted_proxies == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        tg_jpos_path_index(path, sizeof(path), "trusted_proxies", i);
        if (s == NULL || tg_cidr_parse(s, &conf->trusted_proxies[i]) != TG_OK) {
            return tg_conf_error(ctx, path,
                                 "bad address range %s: expected \"10.0.0.0/8\", \"fd00::/8\" "
                                 "or an address, with no bits set past the prefix",
                                 tg_jpos_quote(quoted, sizeof(quoted), s != NULL ? s : "?"));
        }
        conf->n_trusted_proxies = i + 1;
    }
    return TG_OK;
}

/* "audit": the file audit records go to (relative to the conf's directory), opened at start. */
static int load_audit(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *audit = NULL;
    const char *file = NULL;
    int rc = tg_conf_get_json(ctx, root, "", "audit", JSON_OBJECT, false, &audit);

    if (rc != TG_OK || audit == NULL) {
        return rc;
    }
    rc = tg_conf_check_keys(ctx, audit, "audit", audit_keys);
    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, audit, "audit", "file", true, &file);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, audit, "audit", "flush_ms", 1, 60000,
                                            &conf->audit_flush_ms);
    if (rc != TG_OK || file == NULL) {
        return rc;
    }
    return tg_conf_resolve_path(ctx->file, file, &conf->audit_file);
}

/* Everything but the routes, in the order of the README. */
static int load_settings(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    int rc;

    if (!json_is_object(root)) {
        return tg_conf_error(ctx, "", "expected the conf to be an object, got %s",
                             tg_conf_type_name(root));
    }
    /* Each section is read even after an error in another: --check reports them all. */
    rc = tg_conf_check_keys(ctx, root, "", top_keys);
    rc = tg_conf_worst(rc, load_listen(ctx, root, conf));
    rc = tg_conf_worst(rc, tg_conf_get_bool(ctx, root, "", "reuse_port", &conf->reuse_port));
    rc = tg_conf_worst(rc, tg_conf_get_unsigned(ctx, root, "", "workers", 0, 64, &conf->workers));
    rc = tg_conf_worst(rc, load_trace(ctx, root, conf));
    rc = tg_conf_worst(rc, load_limits(ctx, root, conf));
    rc = tg_conf_worst(rc, tg_conf_get_unsigned(ctx, root, "", "shutdown_grace_ms", 0, 600000,
                                                &conf->shutdown_grace_ms));
    rc = tg_conf_worst(rc, load_tls(ctx, root, conf));
    rc = tg_conf_worst(rc, load_admin(ctx, root, conf));
    rc = tg_conf_worst(rc, load_otlp(ctx, root, conf));
    rc = tg_conf_worst(rc, load_audit(ctx, root, conf));
    rc = tg_conf_worst(rc, load_trusted(ctx, root, conf));
    rc = tg_conf_worst(rc, tg_conf_load_spool(ctx, root, conf));
    rc = tg_conf_worst(rc, tg_conf_upstreams_load(ctx, root, conf));
    return tg_conf_worst(rc, tg_conf_ready_load(ctx, root, conf));
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
    /* After the routes, which point at its issuers. */
    if (conf->auth != NULL && conf->auth_free != NULL) {
        conf->auth_free(conf->auth);
    }
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        tg_conf_upstream_cleanup(&conf->upstreams[i]);
    }
    free(conf->upstreams);
    free(conf->ready_requires);
    for (size_t i = 0; i < conf->n_trace_accept; i++) {
        free(conf->trace_accept[i]);
    }
    free(conf->file);
    free(conf->listen_host);
    free(conf->admin_host);
    free(conf->otlp_endpoint);
    free(conf->trace_header);
    free(conf->tls_cert);
    free(conf->tls_key);
    free(conf->tls_priorities);
    free(conf->audit_file);
    free(conf->trusted_proxies);
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
    conf->connection_buffer_bytes = 8192;
    conf->max_header_bytes = 8192 - TG_HEAD_RESERVE;
    conf->stream_above_bytes = TG_CONF_MIB;
    conf->stream_buffer_bytes = 131072;
    conf->stream_idle_timeout_ms = 30000;
    conf->shutdown_grace_ms = 10000;
    conf->otlp_sample_ratio = 1.0;
    conf->otlp_queue_size = 2048;
    conf->otlp_batch_size = 512;
    conf->otlp_batch_timeout_ms = 5000;
    conf->otlp_timeout_ms = 10000;
    conf->audit_flush_ms = 200;
    atomic_init(&conf->refs, 1);
    return conf;
}

/* What the conf is and when it came: for /metrics, the admin listener and the logs. */
static void stamp(struct tg_conf *conf, const char *text, size_t len)
{
    struct timespec ts;

    if (tg_sha256_hex(text, len, conf->checksum) != TG_OK) {
        snprintf(conf->checksum, sizeof(conf->checksum), "unknown");
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    conf->loaded_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Reads ctx->file into a conf: every section, then the routes, going on after an error in
 * one so that ctx->all gathers them all. On success *out owns the conf. */
static int load(struct tg_conf_ctx *ctx, tg_conf_routes_fn *load_routes, struct tg_conf **out)
{
    struct tg_jpos *pos = NULL;
    struct tg_conf *conf = NULL;
    json_t *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = tg_file_read(ctx->file, CONF_FILE_MAX, &text, &len, ctx->err, sizeof(ctx->err));
    if (rc != TG_OK) {
        goto out;
    }
    rc = TG_ENOMEM;
    pos = tg_jpos_build(text, len);
    conf = conf_new(ctx->file);
    if (pos == NULL || conf == NULL) {
        goto out;
    }
    ctx->pos = pos;
    stamp(conf, text, len);
    rc = parse_json(ctx, text, len, &root);
    if (rc == TG_OK) {
        rc = load_settings(ctx, root, conf);
    }
    /* The routes too when a setting was wrong (not when the JSON was): their errors count. They
     * get the whole document: a route may name sections beside "routes" (auth issuers). */
    if (root != NULL && rc != TG_ENOMEM && load_routes != NULL) {
        rc = tg_conf_worst(rc, load_routes(ctx, root, conf));
    }
    if (rc == TG_OK && ctx->n_errors > 0) {
        rc = TG_EINVAL; /* an error a loader reported but did not return */
    }
    if (rc == TG_OK) {
        *out = conf;
        conf = NULL;
    }
out:
    if (rc == TG_ENOMEM && ctx->err[0] == '\0') {
        snprintf(ctx->err, sizeof(ctx->err), "%s: out of memory", ctx->file);
    }
    ctx->pos = NULL;
    conf_free(conf);
    json_decref(root);
    tg_jpos_free(pos);
    free(text);
    return rc;
}

int tg_conf_load(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out, char *err,
                 size_t errlen)
{
    struct tg_buf all = {0};
    struct tg_conf_ctx ctx = {.file = file, .all = &all};
    int rc = load(&ctx, load_routes, out);

    if (err != NULL && errlen > 0) {
        /* The first error: later ones may follow from it. */
        size_t first = all.data != NULL ? strcspn(all.data, "\n") : 0;
        if (rc == TG_OK) {
            err[0] = '\0';
        } else if (first > 0) {
            snprintf(err, errlen, "%.*s", (int)first, all.data);
        } else {
            snprintf(err, errlen, "%s", ctx.err);
        }
    }
    tg_buf_cleanup(&all);
    return rc;
}

long tg_conf_check(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out,
                   char **errors)
{
    struct tg_buf all = {0};
    struct tg_conf_ctx ctx = {.file = file, .all = &all, .open_files = true};
    struct tg_conf *conf = NULL;
    int rc = load(&ctx, load_routes, &conf);
    size_t len;

    *errors = NULL;
    if (out != NULL) {
        *out = NULL;
    }
    if (rc == TG_OK) {
        if (out != NULL) {
            *out = conf;
        } else {
            tg_conf_unref(conf);
        }
        tg_buf_cleanup(&all);
        return 0;
    }
    if (all.len == 0 && (tg_buf_append(&all, ctx.err, strlen(ctx.err)) != TG_OK ||
                         tg_buf_append(&all, "\n", 1) != TG_OK)) {
        tg_buf_cleanup(&all);
        return -1;
    }
    *errors = tg_buf_steal(&all, &len);
    return ctx.n_errors > 0 ? (long)ctx.n_errors : 1;
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
