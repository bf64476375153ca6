/* The span exporter: its thread, the batches, the OTLP/JSON encoding and the retries. */
#include "gateway/otlp.h"

#include <ctype.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gateway/log.h"
#include "gateway/req.h"
#include "gateway/span.h"
#include "gateway/upstream.h"

#define BACKOFF_FIRST_MS  500u
#define BACKOFF_MAX_MS    30000u
#define SHUTDOWN_FLUSH_MS 2000u /* the one try a batch gets at exit */

struct tg_otlp_stats tg_otlp_stats;

struct tg_otlp {
    struct tg_otlp_opts o; /* strings below are owned copies */
    char *url;
    char *service_name;
    char *resource_attrs;
    int wake_fd;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    bool flushing; /* the exporter's thread only: the last flush runs */
    struct tg_up_post *post;
    struct tg_span *batch; /* owned: batch_size spans */
    struct tg_span_ring *rings[];
};

/* ---- encoding ---------------------------------------------------------------------------- */

static json_t *attr_str(const char *key, const char *value)
{
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value);
}

/* int64 values are strings in the protobuf JSON mapping. */
static json_t *attr_int(const char *key, long long value)
{
    char text[24];

    snprintf(text, sizeof(text), "%lld", value);
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", text);
}

static void add(json_t *attrs, json_t *a)
{
    json_array_append_new(attrs, a);
}

static void add_str(json_t *attrs, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0') {
        add(attrs, attr_str(key, value));
    }
}

/* Percent-decodes s in place (OTEL_RESOURCE_ATTRIBUTES values). */
static void pct_decode(char *s)
{
    char *w = s;

    for (const char *r = s; *r != '\0'; r++) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], '\0'};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static char *trim(char *s)
{
    size_t n = strlen(s);

    while (*s == ' ' || *s == '\t') {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
    return s;
}

/* The resource: OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2"), then service.name (OTEL_SERVICE_NAME
 * wins over the list, as the specification orders) and service.version. */
static json_t *resource(const struct tg_otlp_opts *o)
{
    json_t *attrs = json_array();
    char *list = o->resource_attrs != NULL ? strdup(o->resource_attrs) : NULL;
    const char *name =
        o->service_name != NULL && o->service_name[0] != '\0' ? o->service_name : NULL;
    char *save = NULL;

    for (char *item = list != NULL ? strtok_r(list, ",", &save) : NULL; item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *key;
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        key = trim(item);
        pct_decode(eq + 1);
        if (key[0] == '\0' || (strcmp(key, "service.name") == 0 && name != NULL)) {
            continue;
        }
        if (strcmp(key, "service.name") == 0) {
            name = NULL; /* given in the list: keep that one */
        }
        add(attrs, attr_str(key, trim(eq + 1)));
    }
    if (name != NULL || o->resource_attrs == NULL ||
        strstr(o->resource_attrs, "service.name") == NULL) {
        add(attrs, attr_str("service.name", name != NULL ? name : "tracegate"));
    }
    add(attrs, attr_str("service.version", TG_VERSION));
    free(list);
    return json_pack("{s:o}", "attributes", attrs);
}

static json_t *span_attributes(const struct tg_span *s)
{
    json_t *a = json_array();

    add_str(a, "http.request.method", s->method);
    if (s->status > 0) {
        add(a, attr_int("http.response.status_code", s->status));
    }
    if (s->kind == TG_SPAN_SERVER) {
        add_str(a, "url.scheme", s->scheme);
        add_str(a, "http.route", s->route);
        add_str(a, "tracegate.route", s->route_name);
        add_str(a, "network.protocol.name", "http");
        add_str(a, "network.protocol.version", s->protocol);
        add_str(a, "client.address", s->peer);
        add_str(a, "user_agent.original", s->user_agent);
    } else {
        add_str(a, "server.address", s->peer);
        if (s->port > 0) {
            add(a, attr_int("server.port", s->port));
        }
        add_str(a, "network.peer.address", s->peer_ip);
        add_str(a, "tracegate.upstream", s->upstream);
        add(a, attr_int("http.request.resend_count", s->resend_count));
    }
    add_str(a, "error.type", s->error_type);
    return a;
}

static json_t *span_json(const struct tg_span *s)
{
    char start[24], end[24];
    json_t *j;

    snprintf(start, sizeof(start), "%" PRIu64, s->start_ns);
    snprintf(end, sizeof(end), "%" PRIu64, s->end_ns);
    j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i}}", "traceId", s->trace_id, "spanId",
                  s->span_id, "name", s->name, "kind", s->kind, "startTimeUnixNano", start,
                  "endTimeUnixNano", end, "attributes", span_attributes(s), "status", "code",
                  s->error ? 2 : 0);
    if (j != NULL && s->parent_id[0] != '\0') {
        json_object_set_new(j, "parentSpanId", json_string(s->parent_id));
    }
    return j;
}

json_t *tg_otlp_encode(const struct tg_otlp_opts *o, const struct tg_span *spans, size_t n)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < n; i++) {
        json_array_append_new(list, span_json(&spans[i]));
    }
    return json_pack("{s:[{s:o, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource",
                     resource(o), "scopeSpans", "scope", "name", "tracegate", "version", TG_VERSION,
                     "spans", list);
}

/* ---- sending ----------------------------------------------------------------------------- */

static bool retryable(int rc, int status)
{
    return rc != TG_OK || status == 429 || status == 502 || status == 503 || status == 504;
}

/* Sleeps up to ms, waking early when the exporter is asked to stop. */
static void nap(struct tg_otlp *x, unsigned ms)
{
    uint64_t end = tg_now_us() + (uint64_t)ms * 1000u;

    while (!atomic_load(&x->stop) && tg_now_us() < end) {
        poll(NULL, 0, 50);
    }
}

/* Sends one batch; retries while it may. last: one try only, of at most SHUTDOWN_FLUSH_MS
 * (shutting down). True when the collector took it. */
static bool send_batch(struct tg_otlp *x, size_t n, bool last)
{
    json_t *body = tg_otlp_encode(&x->o, x->batch, n);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    uint64_t give_up = tg_now_us() + (uint64_t)x->o.timeout_ms * 3000u;
    unsigned backoff = BACKOFF_FIRST_MS;
    int status = 0, rc = TG_ENOMEM;

    json_decref(body);
    for (unsigned attempt = 0; text != NULL; attempt++) {
        unsigned after = 0;
        if (attempt > 0) {
            atomic_fetch_add(&tg_otlp_stats.retries, 1);
        }
        rc = tg_up_post_send(x->post, x->url, "application/json", text, strlen(text),
                             last && x->o.timeout_ms > SHUTDOWN_FLUSH_MS ? SHUTDOWN_FLUSH_MS
                                                                         : x->o.timeout_ms,
                             &status, &after);
        if (!retryable(rc, status) || last || atomic_load(&x->stop) ||
            tg_now_us() + (uint64_t)backoff * 1000u >= give_up) {
            break;
        }
        nap(x, after > 0 ? (after * 1000u < BACKOFF_MAX_MS ? after * 1000u : BACKOFF_MAX_MS)
                         : backoff);
        backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
    }
    free(text);
    if (rc == TG_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&tg_otlp_stats.exported, n);
        return true;
    }
    if (rc == TG_OK && !retryable(rc, status)) {
        atomic_fetch_add(&tg_otlp_stats.rejected, n);
        tg_log(TG_LOG_WARN, NULL, "otlp.rejected", "collector answered %d: %zu spans dropped",
               status, n);
        return false;
    }
    atomic_fetch_add(&tg_otlp_stats.failed, n);
    tg_log(TG_LOG_WARN, NULL, "otlp.failed", "export failed (%s%d): %zu spans dropped",
           rc == TG_OK ? "status " : "no answer, ", rc == TG_OK ? status : rc, n);
    return false;
}

static size_t pending(const struct tg_otlp *x)
{
    size_t n = 0;

    for (unsigned i = 0; i < x->o.n_workers; i++) {
        n += tg_span_ring_count(x->rings[i]);
    }
    return n;
}

/* Fills the batch from the rings, a fair share from each first. */
static size_t take(struct tg_otlp *x)
{
    size_t n = 0;

    for (unsigned pass = 0; pass < 2 && n < x->o.batch_size; pass++) {
        for (unsigned i = 0; i < x->o.n_workers && n < x->o.batch_size; i++) {
            size_t share = pass == 0 ? (x->o.batch_size + x->o.n_workers - 1) / x->o.n_workers
                                     : x->o.batch_size - n;
            if (share > x->o.batch_size - n) {
                share = x->o.batch_size - n;
            }
            n += tg_span_ring_pop(x->rings[i], x->batch + n, share);
        }
    }
    return n;
}

static void *exporter_main(void *arg)
{
    struct tg_otlp *x = arg;
    uint64_t first_seen = 0; /* when spans were first seen waiting, 0: none */

    while (!atomic_load(&x->stop)) {
        size_t n = pending(x);
        uint64_t now = tg_now_us();
        struct pollfd pfd = {.fd = x->wake_fd, .events = POLLIN};
        long wait_ms = -1;
        if (n == 0) {
            first_seen = 0;
        } else if (first_seen == 0) {
            first_seen = now;
        }
        if (n >= x->o.batch_size ||
            (n > 0 && now - first_seen >= (uint64_t)x->o.batch_timeout_ms * 1000u)) {
            send_batch(x, take(x), false);
            first_seen = pending(x) > 0 ? tg_now_us() : 0;
            continue;
        }
        if (n > 0) {
            wait_ms =
                (long)((first_seen + (uint64_t)x->o.batch_timeout_ms * 1000u - now) / 1000u) + 1;
        }
        if (poll(&pfd, 1, (int)wait_ms) > 0) {
            uint64_t v;
            ssize_t r = read(x->wake_fd, &v, sizeof(v));
            (void)r;
        }
    }
    /* Shutting down (the drain is over): what is queued goes out, one short try per batch, and
     * after a failed one the rest is dropped and counted, so a collector that is gone cannot
     * hold the exit past the service manager's patience. */
    x->flushing = true;
    for (size_t n = take(x); n > 0; n = take(x)) {
        if (!send_batch(x, n, true)) {
            for (n = take(x); n > 0; n = take(x)) {
                atomic_fetch_add(&tg_otlp_stats.failed, n);
            }
        }
    }
    return NULL;
}

/* ---- life -------------------------------------------------------------------------------- */

/* Asked by a post in progress: a normal send gives way to the exit (the last flush does not:
 * it runs after the stop, with its own short timeout). */
static bool stopping(void *arg)
{
    struct tg_otlp *x = arg;

    return atomic_load(&x->stop) && !x->flushing;
}

int tg_otlp_start(const struct tg_otlp_opts *o, struct tg_otlp **out)
{
    /* rings[] holds pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
    struct tg_otlp *x = calloc(1, sizeof(*x) + o->n_workers * sizeof(x->rings[0]));
    size_t per_ring = o->queue_size / (o->n_workers > 0 ? o->n_workers : 1);
    int rc = TG_ENOMEM;

    *out = NULL;
    if (x == NULL) {
        return rc;
    }
    x->o = *o;
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->url = strdup(o->url);
    x->service_name = o->service_name != NULL ? strdup(o->service_name) : NULL;
    x->resource_attrs = o->resource_attrs != NULL ? strdup(o->resource_attrs) : NULL;
    x->o.url = x->url;
    x->o.service_name = x->service_name;
    x->o.resource_attrs = x->resource_attrs;
    x->batch = calloc(o->batch_size, sizeof(*x->batch));
    x->post = tg_up_post_new(stopping, x);
    atomic_init(&x->stop, false);
    if (x->wake_fd == -1 || x->url == NULL || x->batch == NULL || x->post == NULL) {
        goto fail;
    }
    for (unsigned i = 0; i < o->n_workers; i++) {
        /* A worker wakes the exporter once its share of a batch waits. */
        x->rings[i] = tg_span_ring_new(per_ring > 16 ? per_ring : 16, x->wake_fd,
                                       (o->batch_size + o->n_workers - 1) / o->n_workers);
        if (x->rings[i] == NULL) {
            goto fail;
        }
    }
    if (pthread_create(&x->thread, NULL, exporter_main, x) != 0) {
        rc = TG_EINTERNAL;
        goto fail;
    }
    x->running = true;
    atomic_store(&tg_otlp_stats.running, x);
    *out = x;
    return TG_OK;
fail:
    tg_log(TG_LOG_ERROR, NULL, "otlp.error", "cannot start the span exporter");
    tg_otlp_stop(x);
    return rc;
}

struct tg_span_ring *tg_otlp_ring(struct tg_otlp *x, unsigned i)
{
    return x != NULL && i < x->o.n_workers ? x->rings[i] : NULL;
}

uint64_t tg_otlp_queue_drops(const struct tg_otlp *x)
{
    uint64_t n = 0;

    for (unsigned i = 0; x != NULL && i < x->o.n_workers; i++) {
        n += atomic_load_explicit(&x->rings[i]->dropped, memory_order_relaxed);
    }
    return n;
}

void tg_otlp_stop(struct tg_otlp *x)
{
    uint64_t one = 1;

    if (x == NULL) {
        return;
    }
    if (x->running) {
        atomic_store(&x->stop, true);
        if (write(x->wake_fd, &one, sizeof(one)) == -1) {
            /* the eventfd cannot be full: nothing to do */
        }
        pthread_join(x->thread, NULL);
    }
    atomic_store(&tg_otlp_stats.running, NULL);
    for (unsigned i = 0; i < x->o.n_workers; i++) {
        free(x->rings[i]);
    }
    if (x->wake_fd >= 0) {
        close(x->wake_fd);
    }
    tg_up_post_free(x->post);
    free(x->batch);
    free(x->url);
    free(x->service_name);
    free(x->resource_attrs);
    free(x);
}
