#ifndef TG_GATEWAY_CONF_H
#define TG_GATEWAY_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define TG_TRACE_ACCEPT_MAX 8
#define TG_CONF_ERR_MAX     1024
#define TG_CONF_NAME_MAX    64 /* longest upstream or backend name, see tg_conf_is_name */
#define TG_CONF_MIB         1048576u
#define TG_CONF_GIB         1073741824u /* the largest size a conf key takes */
#define TG_CONF_HOUR_MS     3600000u    /* the longest time a conf key takes */

struct tg_jpos;

/* One upstream service: where it is and how long one call to it may take. */
struct tg_upstream {
    char *name;                  /* owned */
    char *url;                   /* owned: "http://host:port", no path, no trailing '/' */
    char *base_path;             /* owned: path part of the conf url without trailing '/', or "" */
    unsigned timeout_ms;         /* cap on one call (default 5000) */
    unsigned connect_timeout_ms; /* cap on the TCP/TLS connect (default 1000) */
    unsigned max_in_flight;      /* per worker, 0 = unlimited */
};

/* The top-level "spool" block: where durable routes keep what they accepted (spool/). Paths are
 * resolved against the conf file's directory. Read at start; a reload keeps the running one. */
struct tg_spool_conf {
    char *path;            /* owned: the SQLite file */
    bool sync_full;        /* "synchronous": "full" (default) or "normal" */
    size_t max_bytes;      /* quota on the file (default 1 GiB) */
    size_t min_free_bytes; /* refuse new submissions below this much free disk (default 64 MiB) */
    char *key_file;        /* owned: the sealing key (default: path + ".key") */
    char **old_key_files;  /* owned: keys that only open (after a rotation) */
    size_t n_old_key_files;
    unsigned key_ttl_s;        /* delivered or rejected records are forgotten after (30 days) */
    unsigned response_ttl_s;   /* kept answers for replays are dropped after (1 day) */
    unsigned group_commit_us;  /* wait this long for more to commit together (default 0) */
    unsigned group_commit_max; /* most operations in one commit (default 64) */
};

/* Everything the conf file says; shared read-only by all workers once loaded.
 * Replaced as a whole on reload: requests hold a reference until they finish. */
struct tg_conf {
    char *file;                              /* owned: path it was read from */
    char *listen_host;                       /* owned: default "0.0.0.0" */
    unsigned port;                           /* default 8080 */
    unsigned workers;                        /* 0 = one per online CPU */
    char *trace_header;                      /* owned: default "X-Trace-Id" */
    char *trace_accept[TG_TRACE_ACCEPT_MAX]; /* owned: more incoming names, e.g. "trace-id" */
    size_t n_trace_accept;
    unsigned max_connections;       /* per gateway (default 10000) */
    size_t max_body_bytes;          /* request body cap (default 1 MiB) */
    size_t max_response_bytes;      /* upstream body cap (default 16 MiB) */
    unsigned client_timeout_ms;     /* idle client connection timeout (default 30000) */
    size_t connection_buffer_bytes; /* per client connection: request head + response head
                                     * (default 16384: about 8 KiB of request headers). An idle
                                     * keep-alive connection costs this much memory. */
    unsigned shutdown_grace_ms;     /* default 10000 */
    char *tls_cert;                 /* owned: PEM file path, NULL = plain HTTP */
    char *tls_key;                  /* owned: PEM file path */
    struct tg_spool_conf *spool;    /* owned, NULL without a "spool" block */
    struct tg_upstream *upstreams;  /* owned array */
    size_t n_upstreams;
    void *routes;                      /* owned route table, opaque at this layer */
    void (*routes_free)(void *routes); /* frees routes */
    atomic_uint refs;                  /* one per holder; freed at 0 */
};

/* Where a conf error is reported. file is borrowed, pos is borrowed. */
struct tg_conf_ctx {
    const char *file;
    const struct tg_jpos *pos;
    char err[TG_CONF_ERR_MAX]; /* "FILE:LINE:COL: message (at json.path)" after a failure */
};

/* Parses the conf's "routes" array and attaches the result to conf->routes/routes_free.
 * routes is borrowed (may be NULL when the key is absent). Returns TG_OK or TG_EINVAL with
 * ctx->err set via tg_conf_error(). */
typedef int tg_conf_routes_fn(struct tg_conf_ctx *ctx, json_t *routes, struct tg_conf *conf);

/* Reads and validates FILE. load_routes is called for the "routes" section. On success *out
 * owns a conf with refs = 1. On failure returns TG_EINVAL (or TG_ENOMEM) and err holds
 * "FILE:LINE:COL: message (at json.path)". */
int tg_conf_load(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out, char *err,
                 size_t errlen);

/* Sets ctx->err to "FILE:LINE:COL: <fmt> (at <jpath>)", the position being that of the value
 * at jpath (e.g. "routes[2].upstream"), or of its closest ancestor found. With jpath "" (the
 * whole document) the " (at ...)" part is left out; without ctx->pos, so is ":LINE:COL".
 * Paths are spelled as gateway/jsonpos.h says. Returns TG_EINVAL. */
int tg_conf_error(struct tg_conf_ctx *ctx, const char *jpath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same as tg_conf_error, but at the KEY of the object member at jpath (unknown or misplaced
 * keys, bad names used as keys). Returns TG_EINVAL. */
int tg_conf_error_key(struct tg_conf_ctx *ctx, const char *jpath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Typed access to the member key of the object obj, whose path is jpath (gateway/conf_get.c);
 * shared by conf.c and routes/table.c so that every section reports the same messages. Each returns
 * TG_OK, or TG_EINVAL with ctx->err set (wrong type, out of range, missing when required). An
 * absent optional key leaves *out untouched, so callers preset *out to the default. */

/* Fails on the first key of obj that is not in allowed (NULL-terminated), at that key. */
int tg_conf_check_keys(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                       const char *const *allowed);
/* *out = obj[key] (borrowed) when it has the given type (JSON_OBJECT, JSON_ARRAY, JSON_STRING). */
int tg_conf_get_json(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     json_type type, bool required, json_t **out);
/* *out = a non-empty string, borrowed from obj. */
int tg_conf_get_str(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                    bool required, const char **out);
/* *out = true or false. */
int tg_conf_get_bool(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     bool *out);
/* *out = a JSON integer (not a real) in min..max. */
int tg_conf_get_unsigned(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                         const char *key, unsigned min, unsigned max, unsigned *out);
int tg_conf_get_size(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t min, size_t max, size_t *out);

/* *out = a malloc'd array of the strings of the array obj[key] (each malloc'd, non-empty), *n
 * their count (at most max). Absent: untouched. Free with tg_conf_strs_free. */
int tg_conf_get_strs(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t max, char ***out, size_t *n);
void tg_conf_strs_free(char **strs, size_t n);
/* *out = a malloc'd array of the integers of the array obj[key], each in min..max, *n their count
 * (at most TG_CONF_INTS_MAX). Absent: untouched. */
#define TG_CONF_INTS_MAX 16
int tg_conf_get_ints(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     int min, int max, int **out, size_t *n);

/* The path p as the conf file conf_file names it: relative paths are taken from the conf file's
 * directory. *out is malloc'd. TG_OK or TG_ENOMEM. */
int tg_conf_path(const char *conf_file, const char *p, char **out);

/* Loads the top-level "spool" block into conf->spool (gateway/conf_spool.c); frees one. */
int tg_conf_load_spool(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf);
void tg_conf_spool_free(struct tg_spool_conf *sc);

/* "an object", "a string", "an integer", ...: v's JSON type for messages. */
const char *tg_conf_type_name(const json_t *v);

/* True when s is a non-empty HTTP token (RFC 9110 tchar: letters, digits, !#$%&'*+-.^_`|~). */
bool tg_conf_is_token(const char *s);

/* True when s is 1..TG_CONF_NAME_MAX characters of [A-Za-z0-9_-] (upstream and backend names). */
bool tg_conf_is_name(const char *s);

/* The upstream named name, or NULL. */
const struct tg_upstream *tg_conf_upstream_get(const struct tg_conf *conf, const char *name);

/* Reference counting; tg_conf_unref frees at zero (NULL is a no-op). Any thread. */
struct tg_conf *tg_conf_ref(struct tg_conf *conf);
void tg_conf_unref(struct tg_conf *conf);

#endif
