#ifndef TG_GATEWAY_CONF_H
#define TG_GATEWAY_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/buf.h"
#include "gateway/conf_upstream.h"

#define TG_TRACE_ACCEPT_MAX 8
#define TG_CONF_ERR_MAX     1024
#define TG_CONF_NAME_MAX    64   /* longest upstream or backend name, see tg_conf_is_name */
#define TG_HEAD_RESERVE     2048 /* of a connection buffer, kept for the answer's head */
#define TG_CONF_MIB         1048576u
#define TG_CONF_GIB         1073741824u /* the largest size a conf key takes */
#define TG_CONF_HOUR_MS     3600000u    /* the longest time a conf key takes */

struct tg_audit_sink;
struct tg_cidr;
struct tg_jpos;

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
    char checksum[65];                       /* SHA-256 of the file's bytes, hex */
    uint64_t loaded_us;                      /* when it was loaded, CLOCK_REALTIME us */
    char *listen_host;                       /* owned: default "0.0.0.0" */
    unsigned port;                           /* default 8080 */
    char *admin_host;                        /* owned: the admin listener, NULL when off */
    unsigned admin_port;                     /* default 9901 */
    bool reuse_port;                         /* share the ports with another process */
    unsigned workers;                        /* 0 = one per online CPU */
    char *trace_header;                      /* owned: default "X-Trace-Id" */
    char *trace_accept[TG_TRACE_ACCEPT_MAX]; /* owned: more incoming names, e.g. "trace-id" */
    size_t n_trace_accept;
    unsigned max_connections;        /* per gateway (default 10000) */
    size_t max_body_bytes;           /* request body cap (default 1 MiB) */
    size_t max_response_bytes;       /* cap on an upstream answer held whole (default 16 MiB) */
    size_t stream_above_bytes;       /* proxy bodies longer (or of unknown length) stream
                                      * (default 1 MiB) */
    size_t stream_buffer_bytes;      /* ring of each streamed body (default 128 KiB) */
    unsigned stream_idle_timeout_ms; /* streamed body: longest wait for its next bytes
                                      * (default 30000) */
    unsigned client_timeout_ms;      /* idle client connection timeout (default 30000) */
    size_t connection_buffer_bytes;  /* per client connection: request head + answer head
                                      * (default 8192). An idle keep-alive connection costs this
                                      * much memory. */
    size_t max_header_bytes;         /* largest request head: 431 beyond (default: the buffer
                                      * less TG_HEAD_RESERVE) */
    unsigned shutdown_grace_ms;      /* default 10000 */
    char *otlp_endpoint;             /* owned: OTLP/HTTP base URL, NULL = from the environment */
    double otlp_sample_ratio;        /* traces the gateway starts that are exported (default 1) */
    unsigned otlp_queue_size;        /* spans waiting, all workers (default 2048) */
    unsigned otlp_batch_size;        /* spans per export (default 512) */
    unsigned otlp_batch_timeout_ms;  /* longest wait for a batch (default 5000) */
    unsigned otlp_timeout_ms;        /* one export request (default 10000) */
    struct tg_cidr *trusted_proxies; /* owned: peers whose X-Forwarded-For is believed */
    size_t n_trusted_proxies;
    char *audit_file;                 /* owned: the audit sink's file, NULL = no audit */
    unsigned audit_flush_ms;          /* how often the audit writer writes (default 200) */
    struct tg_audit_sink *audit_sink; /* borrowed: opened by main on audit_file, or NULL */
    char *tls_cert;                   /* owned: PEM file path, NULL = plain HTTP */
    char *tls_key;                    /* owned: PEM file path */
    char *tls_priorities;             /* owned: GnuTLS priority string, versions included */
    struct tg_spool_conf *spool;      /* owned, NULL without a "spool" block */
    struct tg_upstream *upstreams;    /* owned array (gateway/conf_upstream.h) */
    size_t n_upstreams;
    const struct tg_upstream **ready_requires; /* owned array of borrowed upstreams: /readyz
                                                * needs a usable target in each */
    size_t n_ready_requires;
    void *routes;                      /* owned route table, opaque at this layer */
    void (*routes_free)(void *routes); /* frees routes */
    void *auth;                        /* owned token issuers (auth/issuer.h), or NULL */
    void (*auth_free)(void *auth);     /* frees auth */
    atomic_uint refs;                  /* one per holder; freed at 0 */
};

/* Where a conf error is reported. file is borrowed, pos is borrowed. */
struct tg_conf_ctx {
    const char *file;
    const struct tg_jpos *pos;
    char err[TG_CONF_ERR_MAX]; /* "FILE:LINE:COL: message (at json.path)" after a failure */
    struct tg_buf *all;        /* borrowed, may be NULL: every error, one per line */
    unsigned n_errors;         /* errors reported so far */
    bool open_files;           /* read the files the conf names (TLS) as --check does */
};

/* Parses the sections of the conf above the runtime ("auth", "routes") from root (the whole
 * document, borrowed) and attaches the results to conf (routes/routes_free, auth/auth_free).
 * Returns TG_OK or TG_EINVAL with ctx->err set via tg_conf_error(). */
typedef int tg_conf_routes_fn(struct tg_conf_ctx *ctx, json_t *root, struct tg_conf *conf);

/* Reads and validates FILE. load_routes is called with the whole document. On success *out
 * owns a conf with refs = 1. On failure returns TG_EINVAL (or TG_ENOMEM) and err holds the
 * first error, "FILE:LINE:COL: message (at json.path)". */
int tg_conf_load(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out, char *err,
                 size_t errlen);

/* What --check does: loads FILE as tg_conf_load, but goes on after an error to report every
 * one it can (a syntax error stops it), and reads the TLS files the conf names. Returns the
 * number of errors (0: valid); *errors gets them, one "FILE:LINE:COL: ..." line each (malloc'd,
 * caller frees; NULL when there are none). *out, when out is not NULL, gets the conf when it
 * is valid. -1 when out of memory. */
long tg_conf_check(const char *file, tg_conf_routes_fn *load_routes, struct tg_conf **out,
                   char **errors);

/* TG_OK when a and b are, else the worse: TG_ENOMEM over TG_EINVAL. For loaders that go on
 * after an error to report the next one too. */
static inline int tg_conf_worst(int a, int b)
{
    return a == TG_ENOMEM || b == TG_ENOMEM ? TG_ENOMEM : a != TG_OK ? a : b;
}

/* ", did you mean \"x\"?" when word looks like a typo of one of the n candidates (0:
 * NULL-terminated), else "", into buf (cap bytes). Returns buf. */
const char *tg_conf_did_you_mean(char *buf, size_t cap, const char *word,
                                 const char *const *candidates, size_t n);

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

/* Reports every key of obj that is not in allowed (NULL-terminated), at that key, with a "did
 * you mean" when it looks like a typo of an allowed one. */
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
/* *out = a JSON number (integer or real) in min..max. */
int tg_conf_get_double(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                       const char *key, double min, double max, double *out);
int tg_conf_get_size(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t min, size_t max, size_t *out);

/* Parses a decimal port in lo..65535 from s (n bytes): digits only, no sign or spaces. */
bool tg_conf_parse_port(const char *s, size_t n, unsigned lo, unsigned *port);

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

/* Loads the top-level "spool" block into conf->spool (gateway/conf_spool.c); frees one. */
int tg_conf_load_spool(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf);
void tg_conf_spool_free(struct tg_spool_conf *sc);

/* "an object", "a string", "an integer", ...: v's JSON type for messages. */
const char *tg_conf_type_name(const json_t *v);

/* True when s is a non-empty HTTP token (RFC 9110 tchar: letters, digits, !#$%&'*+-.^_`|~). */
bool tg_conf_is_token(const char *s);

/* True when s is 1..TG_CONF_NAME_MAX characters of [A-Za-z0-9_-] (upstream and backend names). */
bool tg_conf_is_name(const char *s);

/* *out = path p as the conf at conf_file means it: relative to the conf file's directory
 * unless absolute (malloc'd, caller frees). The file is not opened. TG_OK or TG_ENOMEM. */
int tg_conf_resolve_path(const char *conf_file, const char *p, char **out);

/* The upstream named name, or NULL. */
const struct tg_upstream *tg_conf_upstream_get(const struct tg_conf *conf, const char *name);

/* Reference counting; tg_conf_unref frees at zero (NULL is a no-op). Any thread. */
struct tg_conf *tg_conf_ref(struct tg_conf *conf);
void tg_conf_unref(struct tg_conf *conf);

#endif
