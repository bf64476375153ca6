/* tracegate: argv, signals, the conf, and the wiring of the middleware chain and the routes
 * into the workers' servers. The only file that sees every layer. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth/issuer.h"
#include "auth/refresh.h"
#include "gateway/admin.h"
#include "gateway/audit.h"
#include "gateway/build.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/file.h"
#include "gateway/health.h"
#include "gateway/listen.h"
#include "gateway/log.h"
#include "gateway/otlp.h"
#include "gateway/req.h"
#include "gateway/server.h"
#include "gateway/stats.h"
#include "gateway/testhook.h"
#include "gateway/tls.h"
#include "gateway/worker.h"
#include "middleware/access_log.h"
#include "middleware/audit.h"
#include "middleware/auth.h"
#include "middleware/chain.h"
#include "middleware/client.h"
#include "middleware/deadline.h"
#include "middleware/rate_limit.h"
#include "middleware/route.h"
#include "middleware/scopes.h"
#include "middleware/span.h"
#include "middleware/trace.h"
#include "middleware/validate.h"
#include "routes/deliver.h"
#include "routes/table.h"
#include "spool/cli.h"
#include "spool/fsinfo.h"
#include "spool/spool.h"

/* What runs when, written down once. A request's life: the server reads the head, then
 *   headers  (before the body is read; may answer early: 400, 404, 405, 413, 431)
 *     trace     the trace context is known from here on: every log line carries the id
 *     validate  framing, host and target are safe to forward
 *     client    req->client_ip is the client: the peer, or behind trusted proxies from
 *               X-Forwarded-For
 *     route     req->policy and req->match are set: the route's limits and handler are known,
 *               and req->patient when the route names a patient parameter
 *     auth        the client's copies of claim headers are gone; on routes with auth the bearer
 *                 token verified (401) and the principal is known (auth/principal.h)
 *     scopes      the token grants a scope the route needs, for its patient (403)
 *     rate_limit  the client (subject or address) had a token left (429)
 *   request  (the body is complete)
 *     deadline  req->deadline_us from the policy's budget, or the client's smaller one (408)
 *     then the policy's handler serves (proxy, fan-out, local, return), now or after its calls
 *   response (every answer, early ones and errors too, just before it leaves)
 *     trace     the trace id and the gateway's traceparent on the answer
 *   done     (the end is decided in tg_req_end: sent, or 499; /metrics counted it)
 *     access_log  one request.done line with the final status
 *     span        the request's SERVER span to the OTLP exporter (sampled, export on)
 *     audit       on audited routes, one AuditEvent record to the audit file */
static const struct tg_mw_ops *const on_headers[] = {
    &tg_mw_trace, &tg_mw_validate, &tg_mw_client,     &tg_mw_route,
    &tg_mw_auth,  &tg_mw_scopes,   &tg_mw_rate_limit,
};
static const struct tg_mw_ops *const on_request[] = {&tg_mw_deadline};
static const struct tg_mw_ops *const on_response[] = {&tg_mw_trace};
static const struct tg_mw_ops *const on_done[] = {&tg_mw_access_log, &tg_mw_span, &tg_mw_audit};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct tg_chain chain = {
    .headers = {on_headers, COUNT(on_headers)},
    .request = {on_request, COUNT(on_request)},
    .response = {on_response, COUNT(on_response)},
    .done = {on_done, COUNT(on_done)},
};

/* The admin listener's chain: the same steps, its own fixed routes, and no access log (probes
 * and scrapes every few seconds would drown the request lines). */
static const struct tg_mw_ops *const admin_headers[] = {&tg_mw_trace, &tg_mw_validate,
                                                        &tg_mw_route_admin};

static const struct tg_chain admin_chain = {
    .headers = {admin_headers, COUNT(admin_headers)},
    .request = {on_request, COUNT(on_request)},
    .response = {on_response, COUNT(on_response)},
    .done = {NULL, 0},
};

/* The span exporter's settings from the environment (OpenTelemetry's variables), read on the
 * main thread before any other thread exists. */
struct otel_env {
    const char *endpoint;       /* OTEL_EXPORTER_OTLP_ENDPOINT */
    const char *service_name;   /* OTEL_SERVICE_NAME */
    const char *resource_attrs; /* OTEL_RESOURCE_ATTRIBUTES */
};

static struct otel_env otel_env;

#define PEM_MAX ((size_t)1 << 20) /* a certificate chain or key file */

struct options {
    const char *conf_file;
    int port;       /* -1: from the conf */
    int admin_port; /* -1: from the conf */
    int workers;    /* -1: from the conf */
    bool check;
};

/* The application a server runs: arg is its chain. */
static int app_headers(void *arg, struct tg_req *req)
{
    return tg_chain_headers(arg, req);
}

static int app_request(void *arg, struct tg_req *req)
{
    return tg_chain_request(arg, req);
}

static void app_response(void *arg, struct tg_req *req)
{
    tg_chain_response(arg, req);
}

static void app_done(void *arg, struct tg_req *req)
{
    tg_chain_done(arg, req);
}

static const struct tg_server_app app = {(void *)&chain, app_headers, app_request, app_response,
                                         app_done};
static const struct tg_server_app admin_app = {(void *)&admin_chain, app_headers, app_request,
                                               app_response, app_done};

static void usage(FILE *f)
{
    fprintf(f, "usage: tracegate -c FILE [--port N] [--admin-port N] [--workers N]\n"
               "       tracegate --check -c FILE\n"
               "       tracegate spool list|show|replay|purge ... -c FILE   (tracegate spool "
               "--help)\n"
               "       tracegate --version | --help\n"
               "\n"
               "  -c, --conf FILE   conf file (JSON)\n"
               "  -p, --port N      listen on port N instead of the conf's (0: the kernel picks)\n"
               "  -a, --admin-port N  the admin listener on port N (0: the kernel picks)\n"
               "  -w, --workers N   worker threads (default: the conf's, else one per CPU)\n"
               "  -t, --check       validate the conf and exit: 0 valid, 1 with FILE:LINE:COL\n"
               "  -V, --version     print the version\n"
               "  -h, --help        this text\n"
               "\n"
               "Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the conf.\n"
               "Exit status: 0 after a drain, 1 when the conf or the start failed or the spool\n"
               "failed (an I/O or fsync error), 2 on a usage error.\n");
}

/* The version, the commit and the libraries this binary runs on. */
static void print_version(void)
{
    struct tg_build b;

    tg_build_get(&b);
    printf("tracegate %s (commit %s)\nlibmicrohttpd %s, libcurl %s, jansson %s, %s\n", b.version,
           b.commit, b.libmicrohttpd, b.libcurl, b.jansson, b.openssl);
}

static int parse_uint(const char *s, int max)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max) {
        return -1;
    }
    return (int)v;
}

/* Returns 0 to go on, or an exit code + 1. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"conf", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"admin-port", required_argument, NULL, 'a'},
        {"workers", required_argument, NULL, 'w'},
        {"check", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->port = -1;
    o->admin_port = -1;
    o->workers = -1;
    /* Before any thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "c:p:a:w:tVh", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->conf_file = optarg;
            break;
        case 'p':
            o->port = parse_uint(optarg, 65535);
            if (o->port < 0) {
                fprintf(stderr, "tracegate: bad port '%s'\n", optarg);
                return 3;
            }
            break;
        case 'a':
            o->admin_port = parse_uint(optarg, 65535);
            if (o->admin_port < 0) {
                fprintf(stderr, "tracegate: bad admin port '%s'\n", optarg);
                return 3;
            }
            break;
        case 'w':
            o->workers = parse_uint(optarg, TG_WORKERS_MAX);
            if (o->workers < 1) {
                fprintf(stderr, "tracegate: workers must be 1..%d\n", TG_WORKERS_MAX);
                return 3;
            }
            break;
        case 't':
            o->check = true;
            break;
        case 'V':
            print_version();
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 3;
        }
    }
    if (o->conf_file == NULL || optind != argc) {
        usage(stderr);
        return 3;
    }
    return 0;
}

/* ---- conf -------------------------------------------------------------------------------- */

/* Says so for every upstream whose targets' certificates are not checked: it is the conf's
 * choice, but one an operator must see. */
static void warn_insecure(const struct tg_conf *conf)
{
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        const struct tg_upstream *u = &conf->upstreams[i];
        if (!u->tls.verify) {
            struct tg_logline l;
            tg_logline_begin(&l, TG_LOG_WARN, NULL, "upstream.tls_insecure");
            tg_logline_str(&l, "upstream", u->name);
            tg_logline_str(&l, "msg",
                           "tls.verify is false: the targets' certificates are not checked");
            tg_logline_end(&l);
        }
    }
}

/* Loads file. An error is said once: as a conf.error log line when running (log collectors read
 * JSON lines), as plain FILE:LINE:COL text on stderr for --check (a human reads it). */
static struct tg_conf *load_conf(const char *file, bool log)
{
    struct tg_conf *conf = NULL;
    char err[TG_CONF_ERR_MAX];

    if (tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)) != TG_OK ||
        (log && tg_conf_upstream_files_check(conf, err, sizeof(err)) != TG_OK)) {
        if (log) {
            tg_log(TG_LOG_ERROR, NULL, "conf.error", "%s", err);
        } else {
            fprintf(stderr, "%s\n", err);
        }
        tg_conf_unref(conf);
        return NULL;
    }
    if (log) {
        warn_insecure(conf);
    }
    return conf;
}

/* Whether the spool blocks differ where only a restart applies them. */
static bool spool_changed(const struct tg_spool_conf *a, const struct tg_spool_conf *b)
{
    if (a == NULL || b == NULL) {
        return a != b;
    }
    return strcmp(a->path, b->path) != 0 || strcmp(a->key_file, b->key_file) != 0 ||
           a->n_old_key_files != b->n_old_key_files || a->sync_full != b->sync_full ||
           a->max_bytes != b->max_bytes || a->min_free_bytes != b->min_free_bytes ||
           a->key_ttl_s != b->key_ttl_s || a->response_ttl_s != b->response_ttl_s ||
           a->group_commit_us != b->group_commit_us || a->group_commit_max != b->group_commit_max;
}

/* Reads conf's certificate and key files and makes them what new TLS handshakes get; on
 * failure (logged) the ones in use stay. TG_OK or TG_EINVAL. */
static int load_tls(const struct tg_conf *conf)
{
    char err[512];
    char *cert = NULL;
    char *key = NULL;
    size_t cert_len = 0;
    size_t key_len = 0;
    int rc = tg_file_read(conf->tls_cert, PEM_MAX, &cert, &cert_len, err, sizeof(err));

    if (rc == TG_OK) {
        rc = tg_file_read(conf->tls_key, PEM_MAX, &key, &key_len, err, sizeof(err));
    }
    if (rc == TG_OK) {
        rc = tg_tls_set_credentials(cert, cert_len, key, key_len, err, sizeof(err));
    }
    if (rc != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "tls.error", "%s", err);
    }
    free(cert);
    free(key);
    return rc == TG_OK ? TG_OK : TG_EINVAL;
}

/* What runs: the workers, the admin listener (NULL when off), the JWKS refresher (NULL without
 * auth issuers), the health-check thread, the conf in use (a reference). */
struct running {
    struct tg_workers *ws;
    struct tg_admin *admin;
    struct tg_auth_refresher *keys;
    struct tg_health *health;
    struct tg_deliverer *dl; /* durable routes' delivery, NULL without a spool */
    struct tg_conf *conf;
};

/* Whether next changes what only a restart applies: the listening sockets and the threads. */
static bool needs_restart(const struct tg_conf *next, const struct tg_conf *cur)
{
    bool admin_differs =
        (next->admin_host == NULL) != (cur->admin_host == NULL) ||
        (next->admin_host != NULL &&
         (strcmp(next->admin_host, cur->admin_host) != 0 || next->admin_port != cur->admin_port));

    return next->port != cur->port || next->workers != cur->workers ||
           strcmp(next->listen_host, cur->listen_host) != 0 ||
           next->max_connections != cur->max_connections ||
           next->client_timeout_ms != cur->client_timeout_ms ||
           next->connection_buffer_bytes != cur->connection_buffer_bytes ||
           (next->tls_cert == NULL) != (cur->tls_cert == NULL) ||
           (next->tls_priorities != NULL && cur->tls_priorities != NULL &&
            strcmp(next->tls_priorities, cur->tls_priorities) != 0) ||
           admin_differs;
}

/* --check's look at the spool: a network file system is refused, a weak sync level warned of.
 * TG_OK or TG_EINVAL (said on stderr). */
static int check_spool(const struct tg_conf *conf)
{
    char dir[4096];
    char err[TG_CONF_ERR_MAX];

    if (conf->spool == NULL) {
        return TG_OK;
    }
    if (!conf->spool->sync_full) {
        fprintf(stderr,
                "%s: warning: spool.synchronous is \"normal\": a power loss may lose "
                "submissions that were already answered\n",
                conf->file);
    }
    tg_spool_dir_of(conf->spool->path, dir, sizeof(dir));
    if (tg_spool_fs_check(dir, err, sizeof(err)) == TG_EINVAL) {
        fprintf(stderr, "%s: spool.path: %s\n", conf->file, err);
        return TG_EINVAL;
    }
    return TG_OK;
}

/* --check: every error in the file, one FILE:LINE:COL line each on stderr, and the TLS files
 * read. 0 valid, 1 not. */
static int check(const char *file)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;
    char *errors = NULL;
    long n = tg_conf_check(file, tg_route_table_load, &conf, &errors);

    if (n != 0) {
        if (errors != NULL) {
            fputs(errors, stderr);
        }
        if (n > 1) {
            fprintf(stderr, "%s: %ld errors\n", file, n);
        }
        free(errors);
        return 1;
    }
    if (tg_conf_upstream_files_check(conf, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        tg_conf_unref(conf);
        return 1;
    }
    if (check_spool(conf) != TG_OK) {
        tg_conf_unref(conf);
        return 1;
    }
    printf("%s: ok (%zu routes, %zu upstreams)\n", file, tg_route_table_count(conf->routes),
           conf->n_upstreams);
    tg_conf_unref(conf);
    return 0;
}

static void reload(struct running *r)
{
    struct tg_conf *next = load_conf(r->conf->file, true);

    /* Audited routes with no audit file open would lose their records: refused, not run. */
    if (next != NULL && next->audit_file != NULL && r->conf->audit_sink == NULL) {
        tg_log(TG_LOG_ERROR, NULL, "conf.error", "%s: audit.file is opened at start only",
               next->file);
        tg_conf_unref(next);
        next = NULL;
    }
    if (next == NULL) {
        atomic_fetch_add(&tg_stats.reload_failures, 1);
        tg_log(TG_LOG_ERROR, NULL, "conf.reload_failed", "keeping the running conf");
        return;
    }
    if (needs_restart(next, r->conf)) {
        tg_log(TG_LOG_WARN, NULL, "conf.reload",
               "listen, admin, workers, turning tls on or off, its versions and ciphers and the "
               "connection limits change only on restart");
    }
    if (spool_changed(next->spool, r->conf->spool)) {
        tg_log(TG_LOG_WARN, NULL, "conf.reload",
               "the spool block changes only on restart; the running spool stays");
    }
    /* A renewed certificate is taken at once: new handshakes get it, open connections keep
     * theirs. */
    if (next->tls_cert != NULL && r->conf->tls_cert != NULL && load_tls(next) == TG_OK) {
        tg_log(TG_LOG_INFO, NULL, "tls.reloaded", "certificate %s", next->tls_cert);
    }
    if ((next->audit_file == NULL) != (r->conf->audit_file == NULL) ||
        (next->audit_file != NULL && strcmp(next->audit_file, r->conf->audit_file) != 0)) {
        tg_log(TG_LOG_WARN, NULL, "conf.reload", "audit.file changes only on restart");
    }
    next->audit_sink = r->conf->audit_sink; /* the one sink, opened at start */
    /* Issuers keep their fetched keys across a reload: no 401 while they are fetched again. */
    tg_auth_inherit(next->auth, r->conf->auth);
    tg_auth_refresher_set_conf(r->keys, next);
    tg_workers_reload(r->ws, next);
    tg_health_reload(r->health, next);
    tg_admin_reload(r->admin, next);
    if (r->dl != NULL) {
        tg_deliver_reload(r->dl, next);
    }
    tg_conf_unref(r->conf);
    r->conf = next;
    atomic_fetch_add(&tg_stats.reloads, 1);
    tg_log(TG_LOG_INFO, NULL, "conf.reloaded", "%zu routes", tg_route_table_count(next->routes));
}

static unsigned worker_count(const struct options *o, const struct tg_conf *conf)
{
    long cpus;

    if (o->workers > 0) {
        return (unsigned)o->workers;
    }
    if (conf->workers > 0) {
        return conf->workers;
    }
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > TG_WORKERS_MAX ? TG_WORKERS_MAX : (unsigned)cpus;
}

/* A proxied request holds two descriptors (client and upstream): raise the soft limit to the
 * hard one, as NGINX's worker_rlimit_nofile would, and say when even that cannot hold
 * max_connections clients. */
static void raise_nofile(const struct tg_conf *conf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conf->max_connections + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            tg_log(TG_LOG_WARN, NULL, "limits.nofile", "cannot raise the open-file limit: %m");
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        tg_log(TG_LOG_WARN, NULL, "limits.nofile",
               "open-file limit %llu is below the %llu that %u client connections need",
               (unsigned long long)rl.rlim_cur, (unsigned long long)want, conf->max_connections);
    }
}

static void log_listening(unsigned port, unsigned n, const struct tg_conf *conf,
                          unsigned admin_port)
{
    struct tg_logline l;
    char admin[INET6_ADDRSTRLEN + 16];

    tg_logline_begin_always(&l, TG_LOG_INFO, "listening"); /* scripts and tests wait for it */
    tg_logline_int(&l, "port", port);
    tg_logline_str(&l, "host", conf->listen_host);
    tg_logline_int(&l, "workers", n);
    tg_logline_str(&l, "conf", conf->file);
    tg_logline_int(&l, "routes", (int64_t)tg_route_table_count(conf->routes));
    tg_logline_bool(&l, "tls", conf->tls_cert != NULL);
    if (conf->admin_host != NULL) {
        snprintf(admin, sizeof(admin), strchr(conf->admin_host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                 conf->admin_host, admin_port);
        tg_logline_str(&l, "admin", admin);
    }
    tg_logline_str(&l, "version", TG_VERSION);
    tg_logline_end(&l);
}

/* Waits for signals on the main thread: HUP reloads, TERM/INT drain. */
static void supervise(struct running *r, sigset_t *set)
{
    for (;;) {
        int sig = sigwaitinfo(set, NULL);
        if (sig == SIGHUP) {
            reload(r);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            tg_log(TG_LOG_INFO, NULL, "shutdown", "signal %d: draining", sig);
            atomic_store(&tg_stats.draining, true);
            tg_workers_drain(r->ws);
            if (r->dl != NULL) {
                tg_deliver_drain(r->dl);
            }
            return;
        }
    }
}

/* The admin listener on the conf's address (or --admin-port), if the conf has one. */
static int start_admin(struct running *r, const struct options *opt,
                       const struct tg_server_opts *pub, unsigned *port)
{
    struct tg_server_opts o = *pub;

    if (r->conf->admin_host == NULL) {
        return TG_OK;
    }
    o.host = r->conf->admin_host;
    o.port = opt->admin_port >= 0 ? (unsigned)opt->admin_port : r->conf->admin_port;
    o.max_connections = 64; /* probes and scrapes */
    o.tls = false;          /* plain HTTP: keep it on a private address */
    o.tls_priorities = NULL;
    return tg_admin_start(&o, &admin_app, r->conf, port, &r->admin);
}

/* Starts the span exporter when an endpoint is known (the conf's otlp.endpoint, else
 * OTEL_EXPORTER_OTLP_ENDPOINT) and points each worker's ring at it. */
static int start_otlp(const struct tg_conf *conf, unsigned n, struct tg_otlp **out)
{
    const char *base = conf->otlp_endpoint != NULL ? conf->otlp_endpoint : otel_env.endpoint;
    char url[2048];
    size_t len;
    int rc;
    struct tg_otlp_opts o = {
        .n_workers = n,
        .queue_size = conf->otlp_queue_size,
        .batch_size = conf->otlp_batch_size,
        .batch_timeout_ms = conf->otlp_batch_timeout_ms,
        .timeout_ms = conf->otlp_timeout_ms,
        .service_name = otel_env.service_name,
        .resource_attrs = otel_env.resource_attrs,
    };

    *out = NULL;
    if (base == NULL || base[0] == '\0') {
        return TG_OK;
    }
    len = strlen(base);
    while (len > 0 && base[len - 1] == '/') {
        len--;
    }
    snprintf(url, sizeof(url), "%.*s/v1/traces", (int)len, base);
    o.url = url;
    rc = tg_otlp_start(&o, out);
    for (unsigned i = 0; rc == TG_OK && i < n; i++) {
        tg_stats.span_rings[i] = tg_otlp_ring(*out, i);
    }
    if (rc == TG_OK) {
        tg_log(TG_LOG_INFO, NULL, "otlp.start", "exporting spans to %s", url);
    }
    return rc;
}

/* A port another process listens on is an error unless the conf shares it (reuse_port). */
static int check_port_free(const struct tg_conf *conf, const char *what, const char *host,
                           unsigned port)
{
    char why[128];

    if (conf->reuse_port || tg_listen_probe(host, port, why, sizeof(why)) == TG_OK) {
        return TG_OK;
    }
    tg_log(TG_LOG_ERROR, NULL, "listen.error",
           "%s %s port %u: %s; stop it, or set \"reuse_port\": true to share the port (a "
           "zero-downtime binary upgrade)",
           what, host, port, why);
    return TG_EINVAL;
}

/* The spool failed for good (spool thread): the process drains and exits 1, so that a
 * supervisor restarts it and SQLite recovers from what reached the disk. */
static void on_spool_failed(void)
{
    kill(getpid(), SIGTERM);
}

/* The spool and its delivery, before the workers that hand them submissions. */
static int start_spool(struct tg_conf *conf, struct tg_spool **sp, struct tg_deliverer **dl)
{
    char err[TG_CONF_ERR_MAX];

    if (conf->spool == NULL) {
        return TG_OK;
    }
    if (tg_spool_start(conf->spool, tg_deliver_resend_ok, conf, on_spool_failed, sp, err,
                       sizeof(err)) != TG_OK) {
        fprintf(stderr, "tracegate: %s\n", err);
        tg_log(TG_LOG_ERROR, NULL, "spool.error", "%s", err);
        return TG_EINVAL;
    }
    if (tg_deliver_start(conf, *sp, dl) != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "delivery.error", "cannot start the delivery thread");
        return TG_EINTERNAL;
    }
    return TG_OK;
}

static int run(struct tg_conf *conf, const struct options *opt)
{
    struct running r = {NULL, NULL, NULL, NULL, NULL, conf};
    struct tg_otlp *otlp = NULL;
    struct tg_audit_sink *audit = NULL;
    struct tg_spool *sp = NULL;
    unsigned n = worker_count(opt, conf);
    unsigned port = 0, admin_port = 0;
    sigset_t set;
    int rc = 1;
    struct tg_server_opts o = {
        .host = conf->listen_host,
        .port = opt->port >= 0 ? (unsigned)opt->port : conf->port,
        .max_connections = (conf->max_connections + n - 1) / n,
        .timeout_s = (conf->client_timeout_ms + 999) / 1000,
        .read_timeout_ms = conf->client_timeout_ms,
        .conn_memory = conf->connection_buffer_bytes,
    };

    if (conf->tls_cert != NULL && load_tls(conf) != TG_OK) {
        goto out;
    }
    o.tls = conf->tls_cert != NULL;
    o.tls_priorities = conf->tls_priorities;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before the threads start, so only the main thread ever takes them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (conf->audit_file != NULL &&
        tg_audit_sink_open(conf->audit_file, conf->audit_flush_ms, &audit) != TG_OK) {
        goto out;
    }
    conf->audit_sink = audit;
    if (check_port_free(conf, "listen", o.host, o.port) != TG_OK ||
        (conf->admin_host != NULL &&
         check_port_free(conf, "admin.listen", conf->admin_host,
                         opt->admin_port >= 0 ? (unsigned)opt->admin_port : conf->admin_port) !=
             TG_OK) ||
        start_spool(conf, &sp, &r.dl) != TG_OK || start_otlp(conf, n, &otlp) != TG_OK ||
        tg_auth_refresher_start(conf, &r.keys) != TG_OK ||
        tg_workers_start(n, conf, &o, &app, &port, &r.ws) != TG_OK) {
        goto out;
    }
    if (tg_health_start(conf, &r.health) != TG_OK ||
        start_admin(&r, opt, &o, &admin_port) != TG_OK) {
        tg_workers_drain(r.ws);
        tg_workers_join(r.ws);
        goto out;
    }
    log_listening(port, n, r.conf, admin_port);
    supervise(&r, &set);
    /* The admin listener answers (readiness 503) while the workers drain, and stops before
     * their counters are freed. */
    tg_workers_wait(r.ws);
    tg_admin_stop(r.admin);
    tg_otlp_stop(otlp); /* after the workers: their last spans go out too */
    otlp = NULL;
    tg_workers_join(r.ws);
    tg_log(TG_LOG_INFO, NULL, "stopped", "all requests finished");
    rc = atomic_load(&tg_stats.durable.health) == TG_SPOOL_FAILED ? 1 : 0;
out:
    tg_otlp_stop(otlp);
    tg_health_stop(r.health);
    tg_auth_refresher_stop(r.keys); /* after the workers: they may wake it */
    tg_audit_sink_close(audit);     /* and write to it */
    /* Delivery records its last outcomes through the spool: it stops first. */
    tg_deliver_join(r.dl);
    tg_spool_stop(sp);
    tg_conf_unref(r.conf);
    tg_tls_cleanup();
    return rc;
}

/* TRACEGATE_LOG_LEVEL=debug|info|warn|error; unset or empty means info. TG_OK or TG_EINVAL. */
static int set_log_level(void)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    /* Before any thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *v = getenv("TRACEGATE_LOG_LEVEL");

    if (v == NULL || v[0] == '\0') {
        return TG_OK;
    }
    for (int i = TG_LOG_DEBUG; i <= TG_LOG_ERROR; i++) {
        if (strcmp(v, names[i]) == 0) {
            tg_log_set_level((enum tg_log_level)i);
            return TG_OK;
        }
    }
    fprintf(stderr, "tracegate: TRACEGATE_LOG_LEVEL must be debug, info, warn or error\n");
    return TG_EINVAL;
}

int main(int argc, char **argv)
{
    struct options opt = {0};
    struct tg_conf *conf;
    int rc;

    if (argc > 1 && strcmp(argv[1], "spool") == 0) {
        return tg_spool_cli(argc - 1, argv + 1); /* the operator's commands: spool/cli.c */
    }
    rc = parse_args(argc, argv, &opt);
    if (rc != 0) {
        return rc - 1;
    }
    if (set_log_level() != TG_OK) {
        return 2;
    }
    /* Before any thread exists. NOLINTBEGIN(concurrency-mt-unsafe) */
    otel_env.endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    otel_env.service_name = getenv("OTEL_SERVICE_NAME");
    otel_env.resource_attrs = getenv("OTEL_RESOURCE_ATTRIBUTES");
    /* NOLINTEND(concurrency-mt-unsafe) */
    signal(SIGPIPE, SIG_IGN);
    tg_testhook_init();
    if (opt.check) {
        return check(opt.conf_file);
    }
    conf = load_conf(opt.conf_file, true);
    if (conf == NULL) {
        return 1;
    }
    raise_nofile(conf);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_conf_unref(conf);
        return 1;
    }
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tg_stats.started_unix = (uint64_t)ts.tv_sec;
        tg_stats.started_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    }
    rc = run(conf, &opt);
    curl_global_cleanup();
    return rc;
}
