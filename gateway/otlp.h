#ifndef TG_GATEWAY_OTLP_H
#define TG_GATEWAY_OTLP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/err.h"

struct tg_span;
struct tg_span_ring;

/* OTLP/HTTP span export with JSON encoding (jansson) over libcurl: a thread of its own takes the
 * workers' spans from their rings (gateway/span.h) and POSTs them to {endpoint}/v1/traces in
 * batches of batch_size, or whatever waited batch_timeout_ms; 429, 502, 503, 504 and network
 * failures are retried with exponential backoff (and Retry-After) until the batch is
 * timeout_ms x 3 old; other answers drop the batch. Every span that is not delivered is
 * counted. */

struct tg_otlp_opts {
    const char *url;            /* "http://collector:4318/v1/traces" */
    unsigned n_workers;         /* one ring each */
    size_t queue_size;          /* spans waiting, all workers together */
    size_t batch_size;          /* spans per request */
    unsigned batch_timeout_ms;  /* the longest a span waits for its batch */
    unsigned timeout_ms;        /* one request to the collector */
    const char *service_name;   /* OTEL_SERVICE_NAME, or NULL for "tracegate" */
    const char *resource_attrs; /* OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2"), may be NULL */
};

/* What the exporter did, for /metrics. */
struct tg_otlp_stats {
    _Atomic uint64_t exported;         /* spans the collector accepted */
    _Atomic uint64_t rejected;         /* spans in batches the collector refused (4xx but 429) */
    _Atomic uint64_t failed;           /* spans in batches given up after the retries */
    _Atomic uint64_t retries;          /* requests sent again */
    _Atomic(struct tg_otlp *) running; /* the exporter, for the rings' drop counts */
};

extern struct tg_otlp_stats tg_otlp_stats;

struct tg_otlp;

/* Starts the exporter thread. TG_OK, or a negative tg_err (logged) with *out NULL. Main
 * thread, before the workers start. */
int tg_otlp_start(const struct tg_otlp_opts *o, struct tg_otlp **out) TG_MUST_CHECK;

/* The ring of worker i (< n_workers), alive until tg_otlp_stop. */
struct tg_span_ring *tg_otlp_ring(struct tg_otlp *x, unsigned i);

/* Spans dropped because a worker's ring was full. Any thread. */
uint64_t tg_otlp_queue_drops(const struct tg_otlp *x);

/* Sends what is queued (one try per batch, bounded by timeout_ms), stops the thread and frees
 * everything. The workers must have stopped. NULL is a no-op. Main thread. */
void tg_otlp_stop(struct tg_otlp *x);

/* The OTLP/JSON request body for spans (the resource of o; unit tests). NULL when out of
 * memory. Caller decrefs. Any thread. */
json_t *tg_otlp_encode(const struct tg_otlp_opts *o, const struct tg_span *spans, size_t n);

#endif
