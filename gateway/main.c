/* tracegate: argv, signals, the conf, and the wiring of the middleware chain and the routes
 * into the workers' servers. The only file that sees every layer. */
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

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/file.h"
#include "gateway/log.h"
#include "gateway/req.h"
#include "gateway/server.h"
#include "gateway/stats.h"
#include "gateway/testhook.h"
#include "gateway/worker.h"
#include "middleware/access_log.h"
#include "middleware/chain.h"
#include "middleware/deadline.h"
#include "middleware/route.h"
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
 *     route     req->policy and req->match are set: the route's limits and handler are known
 *   request  (the body is complete)
 *     deadline  req->deadline_us from the policy's budget, or the client's smaller one (408)
 *     then the policy's handler serves (proxy, fan-out, local, return), now or after its calls
 *   response (every answer, early ones and errors too, just before it leaves)
 *     trace     the trace id and the gateway's traceparent on the answer
 *   done     (the end is decided in tg_req_end: sent, or 499; /metrics counted it)
 *     access_log  one request.done line with the final status */
static const struct tg_mw_ops *const on_headers[] = {&tg_mw_trace, &tg_mw_validate, &tg_mw_route};
static const struct tg_mw_ops *const on_request[] = {&tg_mw_deadline};
static const struct tg_mw_ops *const on_response[] = {&tg_mw_trace};
static const struct tg_mw_ops *const on_done[] = {&tg_mw_access_log};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct tg_chain chain = {
    .headers = {on_headers, COUNT(on_headers)},
    .request = {on_request, COUNT(on_request)},
    .response = {on_response, COUNT(on_response)},
    .done = {on_done, COUNT(on_done)},
};

#define PEM_MAX ((size_t)1 << 20) /* a certificate chain or key file */

struct options {
    const char *conf_file;
    int port;    /* -1: from the conf */
    int workers; /* -1: from the conf */
    bool check;
};

static int app_headers(void *arg, struct tg_req *req)
{
    (void)arg;
    return tg_chain_headers(&chain, req);
}

static int app_request(void *arg, struct tg_req *req)
{
    (void)arg;
    return tg_chain_request(&chain, req);
}

static void app_response(void *arg, struct tg_req *req)
{
    (void)arg;
    tg_chain_response(&chain, req);
}

static void app_done(void *arg, struct tg_req *req)
{
    (void)arg;
    tg_chain_done(&chain, req);
}

static const struct tg_server_app app = {NULL, app_headers, app_request, app_response, app_done};

static void usage(FILE *f)
{
    fprintf(f, "usage: tracegate -c FILE [--port N] [--workers N]\n"
               "       tracegate --check -c FILE\n"
               "       tracegate spool list|show|replay|purge ... -c FILE   (tracegate spool "
               "--help)\n"
               "       tracegate --version | --help\n"
               "\n"
               "  -c, --conf FILE   conf file (JSON)\n"
               "  -p, --port N      listen on port N instead of the conf's (0: the kernel picks)\n"
               "  -w, --workers N   worker threads (default: the conf's, else one per CPU)\n"
               "  -t, --check       validate the conf and exit: 0 valid, 1 with FILE:LINE:COL\n"
               "  -V, --version     print the version\n"
               "  -h, --help        this text\n"
               "\n"
               "Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the conf.\n"
               "Exit status: 0 after a drain, 1 when the conf or the start failed or the spool\n"
               "failed (an I/O or fsync error), 2 on a usage error.\n");
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
        {"workers", required_argument, NULL, 'w'},
        {"check", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->port = -1;
    o->workers = -1;
    /* Before any thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "c:p:w:tVh", longs, NULL)) != -1) {
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
            printf("tracegate %s\n", TG_VERSION);
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

/* Loads file; an error goes to stderr as FILE:LINE:COL, and to the log too when running. */
static struct tg_conf *load_conf(const char *file, bool log)
{
    struct tg_conf *conf = NULL;
    char err[TG_CONF_ERR_MAX];

    if (tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        if (log) {
            tg_log(TG_LOG_ERROR, NULL, "conf.error", "%s", err);
        }
        return NULL;
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

static void reload(struct tg_workers *ws, struct tg_deliverer *dl, struct tg_conf **current)
{
    struct tg_conf *next = load_conf((*current)->file, true);

    if (next == NULL) {
        atomic_fetch_add(&tg_stats.reload_failures, 1);
        tg_log(TG_LOG_ERROR, NULL, "conf.reload_failed", "keeping the running conf");
        return;
    }
    if (next->port != (*current)->port || next->workers != (*current)->workers ||
        strcmp(next->listen_host, (*current)->listen_host) != 0 ||
        next->max_connections != (*current)->max_connections ||
        next->client_timeout_ms != (*current)->client_timeout_ms ||
        next->connection_buffer_bytes != (*current)->connection_buffer_bytes ||
        (next->tls_cert == NULL) != ((*current)->tls_cert == NULL)) {
        tg_log(TG_LOG_WARN, NULL, "conf.reload",
               "listen, workers, tls and the connection limits change only on restart");
    }
    if (spool_changed(next->spool, (*current)->spool)) {
        tg_log(TG_LOG_WARN, NULL, "conf.reload",
               "the spool block changes only on restart; the running spool stays");
    }
    tg_workers_reload(ws, next);
    if (dl != NULL) {
        tg_deliver_reload(dl, next);
    }
    tg_conf_unref(*current);
    *current = next;
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

static void log_listening(unsigned port, unsigned n, const struct tg_conf *conf)
{
    struct tg_logline l;

    tg_logline_begin_always(&l, TG_LOG_INFO, "listening"); /* scripts and tests wait for it */
    tg_logline_int(&l, "port", port);
    tg_logline_str(&l, "host", conf->listen_host);
    tg_logline_int(&l, "workers", n);
    tg_logline_str(&l, "conf", conf->file);
    tg_logline_int(&l, "routes", (int64_t)tg_route_table_count(conf->routes));
    tg_logline_bool(&l, "tls", conf->tls_cert != NULL);
    tg_logline_str(&l, "version", TG_VERSION);
    tg_logline_end(&l);
}

/* Waits for signals on the main thread: HUP reloads, TERM/INT drain. */
static void supervise(struct tg_workers *ws, struct tg_deliverer *dl, struct tg_conf **conf,
                      sigset_t *set)
{
    for (;;) {
        int sig = sigwaitinfo(set, NULL);
        if (sig == SIGHUP) {
            reload(ws, dl, conf);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            tg_log(TG_LOG_INFO, NULL, "shutdown", "signal %d: draining", sig);
            atomic_store(&tg_stats.draining, true);
            tg_workers_drain(ws);
            if (dl != NULL) {
                tg_deliver_drain(dl);
            }
            return;
        }
    }
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
    struct tg_workers *ws = NULL;
    struct tg_spool *sp = NULL;
    struct tg_deliverer *dl = NULL;
    char *cert = NULL;
    char *key = NULL;
    unsigned n = worker_count(opt, conf);
    unsigned port = 0;
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

    if (conf->tls_cert != NULL) {
        char err[512];
        size_t len;
        if (tg_file_read(conf->tls_cert, PEM_MAX, &cert, &len, err, sizeof(err)) != TG_OK ||
            tg_file_read(conf->tls_key, PEM_MAX, &key, &len, err, sizeof(err)) != TG_OK) {
            tg_log(TG_LOG_ERROR, NULL, "tls.error", "%s", err);
            goto out;
        }
        o.tls_cert_pem = cert;
        o.tls_key_pem = key;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before the threads start, so only the main thread ever takes them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (start_spool(conf, &sp, &dl) != TG_OK ||
        tg_workers_start(n, conf, &o, &app, &port, &ws) != TG_OK) {
        goto out;
    }
    log_listening(port, n, conf);
    supervise(ws, dl, &conf, &set);
    tg_workers_join(ws);
    tg_log(TG_LOG_INFO, NULL, "stopped", "all requests finished");
    rc = atomic_load(&tg_stats.durable.health) == TG_SPOOL_FAILED ? 1 : 0;
out:
    /* Delivery records its last outcomes through the spool: it stops first. */
    tg_deliver_join(dl);
    tg_spool_stop(sp);
    tg_conf_unref(conf);
    free(cert);
    free(key);
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
    signal(SIGPIPE, SIG_IGN);
    tg_testhook_init();
    conf = load_conf(opt.conf_file, !opt.check);
    if (conf == NULL) {
        return 1;
    }
    if (opt.check) {
        rc = check_spool(conf);
        if (rc == TG_OK) {
            printf("%s: ok (%zu routes, %zu upstreams)\n", opt.conf_file,
                   tg_route_table_count(conf->routes), conf->n_upstreams);
        }
        tg_conf_unref(conf);
        return rc == TG_OK ? 0 : 1;
    }
    raise_nofile(conf);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_conf_unref(conf);
        return 1;
    }
    tg_stats.started_unix = (uint64_t)time(NULL);
    rc = run(conf, &opt);
    curl_global_cleanup();
    return rc;
}
