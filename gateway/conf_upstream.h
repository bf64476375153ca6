#ifndef TG_GATEWAY_CONF_UPSTREAM_H
#define TG_GATEWAY_CONF_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The "upstreams" section of the conf (gateway/conf_upstream.c): each upstream is a pool of
 * targets, with how to balance over them, how to reach them (TLS), when to stop using one
 * (outlier detection, active health checks) and when to stop calling the upstream at all (its
 * breaker). What these settings act on, the state that outlives a reload, is in
 * gateway/pool.h. */

struct tg_conf;
struct tg_conf_ctx;
struct tg_pool;
struct tg_target_state;

#define TG_TARGETS_MAX    32  /* targets of one upstream */
#define TG_TARGET_WEIGHT  100 /* the largest weight */
#define TG_SERVER_NAMEMAX 253 /* a DNS name */

/* A set of HTTP statuses 100..599 (expected answers of a health check, statuses a route
 * retries). Zeroed storage is the empty set. */
struct tg_status_set {
    uint64_t bits[8];
};

static inline bool tg_status_set_has(const struct tg_status_set *s, int status)
{
    return status >= 100 && status < 600 &&
           (s->bits[(status - 100) / 64] >> ((status - 100) % 64) & 1u) != 0;
}

static inline void tg_status_set_add(struct tg_status_set *s, int status)
{
    s->bits[(status - 100) / 64] |= (uint64_t)1 << ((status - 100) % 64);
}

/* One target: an origin the pool may send a call to. */
struct tg_target {
    char *url;                     /* owned: "http://host:port", no path, no trailing '/' */
    unsigned weight;               /* 1..TG_TARGET_WEIGHT (default 1) */
    struct tg_target_state *state; /* one reference: health and ejection, kept across reloads */
};

enum tg_balance {
    TG_BALANCE_LEAST_REQUEST = 0, /* power of two choices, fewer calls in flight wins */
    TG_BALANCE_ROUND_ROBIN = 1,   /* in turn, by weight */
};

/* How calls reach the targets over https. Paths are owned, relative ones already resolved
 * against the conf file's directory. */
struct tg_upstream_tls {
    char *ca_file;     /* owned, NULL = the system's CA store */
    char *cert;        /* owned client certificate (PEM) for mTLS, NULL = none */
    char *key;         /* owned key of cert (PEM) */
    char *server_name; /* owned name sent in SNI and checked in the certificate, NULL = host */
    bool verify;       /* check the target's certificate and name (default true) */
};

/* Passive outlier detection: a target failing calls in a row is ejected for a while. */
struct tg_outlier {
    unsigned consecutive; /* failures in a row that eject (default 5), 0 = never eject */
    unsigned base_ms;     /* first ejection (default 30000); the n-th lasts n times it */
    unsigned max_ms;      /* longest ejection (default 300000) */
    unsigned max_percent; /* most targets ejected at once, percent (default 50) */
};

/* Active health checks; on is false when the upstream has none. */
struct tg_health_check {
    bool on;
    char *method;                /* owned, default "GET" */
    char *path;                  /* owned: request-target after the base path */
    unsigned interval_ms;        /* default 5000 */
    unsigned idle_interval_ms;   /* when the upstream had no call since the last round (60000) */
    unsigned timeout_ms;         /* default 1000 */
    unsigned unhealthy;          /* failed checks in a row that mark a target down (3) */
    unsigned healthy;            /* passed checks in a row that bring it back (2) */
    struct tg_status_set expect; /* passing statuses (default 200..399) */
};

/* The upstream's breaker: Google SRE client-side throttling. */
struct tg_breaker_conf {
    bool on;               /* default true */
    double k;              /* accepts are worth k requests (default 1.5) */
    unsigned window_ms;    /* how far back it looks (default 10000) */
    unsigned min_requests; /* requests in the window before it may throttle (default 5) */
};

/* How many retries may run at once to one upstream. */
struct tg_retry_budget {
    unsigned percent; /* of the calls in flight (default 20) */
    unsigned min;     /* always allowed (default 3) */
};

/* One upstream service: its targets and how calls to it behave. */
struct tg_upstream {
    char *name;                /* owned */
    char *url;                 /* owned: the first target's origin (for callers that address one) */
    char *base_path;           /* owned: path part of the target urls without trailing '/', or "" */
    struct tg_target *targets; /* owned array */
    size_t n_targets;
    enum tg_balance balance;
    unsigned timeout_ms;         /* cap on one call (default 5000) */
    unsigned connect_timeout_ms; /* cap on the TCP/TLS connect (default 1000) */
    unsigned max_in_flight;      /* calls in flight, all workers together; 0 = unlimited */
    struct tg_upstream_tls tls;
    struct tg_outlier outlier;
    struct tg_health_check hc;
    struct tg_breaker_conf breaker;
    struct tg_retry_budget budget;
    struct tg_pool *pool; /* one reference: the shared state of this upstream */
};

/* Parses root["upstreams"] into conf->upstreams, binding each upstream and target to its
 * shared state (tg_pool_get, tg_target_state_get: the state of a name seen in an earlier conf
 * is the same object). TG_OK, TG_ENOMEM, or TG_EINVAL with a FILE:LINE:COL error in ctx. */
int tg_conf_upstreams_load(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf);

/* Checks an http:// or https:// url at jpath (host, port, path; no query, no user info) and
 * splits it into its origin (*origin) and base path (*base, without its trailing '/'), both
 * malloc'd. TG_OK, TG_EINVAL with the error set, or TG_ENOMEM. */
int tg_conf_parse_url(struct tg_conf_ctx *ctx, const char *jpath, const char *url, char **origin,
                      char **base);

/* Parses root["ready"] ({"requires": [upstream names]}) into conf->ready_requires; the
 * upstreams must be loaded. TG_OK, TG_ENOMEM or TG_EINVAL with the error in ctx. */
int tg_conf_ready_load(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf);

/* Frees what u owns and drops its references to shared state. Idempotent. */
void tg_conf_upstream_cleanup(struct tg_upstream *u);

/* Opens every TLS file the upstreams name, to fail at start or reload rather than on each
 * call. TG_OK, or TG_EINVAL with "upstreams.NAME.tls.KEY: FILE: why" in err. */
int tg_conf_upstream_files_check(const struct tg_conf *conf, char *err, size_t errlen);

#endif
