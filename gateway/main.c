/* tracegate: argv, signals, workers, and the wiring of the middleware chain and routes into
 * the server. The only file that sees every layer. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "gateway/server.h"
#include "gateway/stats.h"
#include "gateway/upstream.h"
#include "middleware/access_log.h"
#include "middleware/chain.h"
#include "middleware/deadline.h"
#include "middleware/limits.h"
#include "middleware/router.h"
#include "middleware/trace.h"
#include "routes/table.h"

/* The order is written down once. */
static const struct tg_mw_ops *const chain_order[] = {
    &tg_mw_trace,      /* first: everything after it logs with a trace id */
    &tg_mw_access_log, /* its on_response runs after all later ones: sees the final status */
    &tg_mw_deadline,   /* sets req->deadline_us from the route or the client */
    &tg_mw_limits,     /* framing and target checks before anything is forwarded */
    &tg_mw_router,     /* last: finds the route, calls the handler */
};

static const struct tg_chain chain = {chain_order, sizeof(chain_order) / sizeof(chain_order[0])};

#define PEM_MAX ((size_t)1 << 20) /* a certificate chain or key file */

struct worker {
    pthread_t thread;
    unsigned index;
    struct tg_loop *loop;
    struct tg_up *up;
    struct tg_server *srv;
    struct tg_worker_stats stats;
    _Atomic(struct tg_conf *) next_conf; /* a reference handed over by main on reload */
    atomic_bool stop_requested;
    bool draining;
    uint64_t grace_end_us;
    uint64_t hard_end_us;
    bool cancelled_rest;
    unsigned grace_ms;
};

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
    return tg_chain_run(&chain, req);
}

static void app_response(void *arg, struct tg_req *req)
{
    (void)arg;
    tg_chain_response(&chain, req);
}

static const struct tg_server_app app = {NULL, app_headers, app_request, app_response};

static void usage(FILE *f)
{
    fprintf(f, "usage: tracegate -c FILE [--port N] [--workers N]\n"
               "       tracegate --check -c FILE\n"
               "       tracegate --version | --help\n"
               "\n"
               "  -c, --conf FILE   conf file (JSON)\n"
               "  -p, --port N      listen on port N instead of the conf's (0: the kernel picks)\n"
               "  -w, --workers N   worker threads (default: the conf's, else one per CPU)\n"
               "  -t, --check       validate the conf and exit: 0 valid, 1 with FILE:LINE:COL\n"
               "  -V, --version     print the version\n"
               "  -h, --help        this text\n"
               "\n"
               "Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the conf.\n");
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

/* ---- workers ----------------------------------------------------------------------------- */

static void worker_begin_drain(struct worker *w)
{
    uint64_t now = tg_now_us();

    w->draining = true;
    w->grace_end_us = now + (uint64_t)w->grace_ms * 1000u;
    w->hard_end_us = w->grace_end_us + 2000000u;
    tg_server_quiesce(w->srv);
    tg_log(TG_LOG_INFO, NULL, "drain.start", "worker %u draining %u requests", w->index,
           tg_server_live(w->srv));
}

static void worker_on_wake(void *arg)
{
    struct worker *w = arg;
    struct tg_conf *c = atomic_exchange(&w->next_conf, NULL);

    if (c != NULL) {
        tg_server_set_conf(w->srv, c);
        /* Only listen and workers wait for a restart: the next drain uses the new grace. */
        w->grace_ms = c->shutdown_grace_ms;
        tg_conf_unref(c);
    }
    if (atomic_load(&w->stop_requested) && !w->draining) {
        worker_begin_drain(w);
    }
}

static void worker_tick(void *arg)
{
    struct worker *w = arg;
    uint64_t now;

    tg_log_flush();
    if (!w->draining) {
        return;
    }
    if (tg_server_live(w->srv) == 0) {
        tg_loop_stop(w->loop);
        return;
    }
    now = tg_now_us();
    if (!w->cancelled_rest && now >= w->grace_end_us) {
        w->cancelled_rest = true;
        tg_log(TG_LOG_WARN, NULL, "drain.cancel", "worker %u: grace over, cancelling %u requests",
               w->index, tg_server_live(w->srv));
        tg_server_cancel_all(w->srv, TG_EOVERLOAD);
    } else if (now >= w->hard_end_us) {
        tg_log(TG_LOG_WARN, NULL, "drain.abort", "worker %u: %u requests still open", w->index,
               tg_server_live(w->srv));
        tg_loop_stop(w->loop);
    }
}

static long worker_timeout(void *arg)
{
    struct worker *w = arg;

    return w->draining ? 20 : -1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    tg_log_batch_start();
    tg_loop_run(w->loop);
    tg_log_batch_stop();
    return NULL;
}

static int worker_init(struct worker *w, struct tg_conf *conf, const struct tg_server_opts *o)
{
    unsigned max_connects = conf->max_connections < 64 ? 64 : conf->max_connections;

    atomic_init(&w->next_conf, NULL);
    atomic_init(&w->stop_requested, false);
    w->grace_ms = conf->shutdown_grace_ms;
    w->loop = tg_loop_new();
    if (w->loop == NULL) {
        return TG_ENOMEM;
    }
    w->up = tg_up_new(w->loop, max_connects);
    if (w->up == NULL) {
        return TG_ENOMEM;
    }
    w->srv = tg_server_start(w->loop, w->up, &w->stats, o, &app, conf);
    if (w->srv == NULL) {
        return TG_EINVAL;
    }
    tg_loop_on_wake(w->loop, worker_on_wake, w);
    return tg_loop_add_hook(w->loop, worker_tick, worker_timeout, w);
}

static void worker_cleanup(struct worker *w)
{
    tg_conf_unref(atomic_exchange(&w->next_conf, NULL));
    tg_server_stop(w->srv);
    tg_up_free(w->up);
    tg_loop_free(w->loop);
    w->srv = NULL;
    w->up = NULL;
    w->loop = NULL;
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

static void reload(struct worker *ws, unsigned n, struct tg_conf **current)
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
    for (unsigned i = 0; i < n; i++) {
        tg_conf_unref(atomic_exchange(&ws[i].next_conf, tg_conf_ref(next)));
        tg_loop_wake(ws[i].loop);
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
static void supervise(struct worker *ws, unsigned n, struct tg_conf **conf, sigset_t *set)
{
    for (;;) {
        int sig = sigwaitinfo(set, NULL);
        if (sig == SIGHUP) {
            reload(ws, n, conf);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            tg_log(TG_LOG_INFO, NULL, "shutdown", "signal %d: draining", sig);
            atomic_store(&tg_stats.draining, true);
            for (unsigned i = 0; i < n; i++) {
                atomic_store(&ws[i].stop_requested, true);
                tg_loop_wake(ws[i].loop);
            }
            return;
        }
    }
}

static int start_workers(struct worker *ws, unsigned n, struct tg_conf *conf,
                         struct tg_server_opts *o)
{
    for (unsigned i = 0; i < n; i++) {
        ws[i].index = i;
        if (worker_init(&ws[i], conf, o) != TG_OK) {
            return TG_EINVAL;
        }
        if (i == 0) {
            o->port = tg_server_port(ws[0].srv); /* the others bind what the kernel picked */
        }
        tg_stats.workers[tg_stats.n++] = &ws[i].stats;
    }
    return TG_OK;
}

static int run(struct tg_conf *conf, const struct options *opt)
{
    unsigned n = worker_count(opt, conf);
    struct worker *ws = calloc(n, sizeof(*ws));
    char *cert = NULL;
    char *key = NULL;
    unsigned started = 0;
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

    if (ws == NULL) {
        return 1;
    }
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
    if (start_workers(ws, n, conf, &o) != TG_OK) {
        goto out;
    }
    for (; started < n; started++) {
        if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
            tg_log(TG_LOG_ERROR, NULL, "worker.error", "pthread_create failed");
            goto out;
        }
    }
    log_listening(o.port, n, conf);
    supervise(ws, n, &conf, &set);
    rc = 0;
out:
    if (rc != 0) {
        for (unsigned i = 0; i < started; i++) {
            atomic_store(&ws[i].stop_requested, true);
            tg_loop_wake(ws[i].loop);
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
    }
    for (unsigned i = 0; i < n; i++) {
        worker_cleanup(&ws[i]);
    }
    tg_stats.n = 0;
    if (rc == 0) {
        tg_log(TG_LOG_INFO, NULL, "stopped", "all requests finished");
    }
    tg_conf_unref(conf);
    free(ws);
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

int main(int argc, char **argv)
{
    struct options opt = {0};
    struct tg_conf *conf;
    int rc = parse_args(argc, argv, &opt);

    if (rc != 0) {
        return rc - 1;
    }
    if (set_log_level() != TG_OK) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    conf = load_conf(opt.conf_file, !opt.check);
    if (conf == NULL) {
        return 1;
    }
    if (opt.check) {
        printf("%s: ok (%zu routes, %zu upstreams)\n", opt.conf_file,
               tg_route_table_count(conf->routes), conf->n_upstreams);
        tg_conf_unref(conf);
        return 0;
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
