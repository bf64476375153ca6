#ifndef TG_GATEWAY_SPAN_H
#define TG_GATEWAY_SPAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Spans on their way to the OTLP exporter (gateway/otlp.c): a fixed record each, copied into a
 * bounded single-producer single-consumer ring per worker. A worker fills a slot in place and
 * publishes it with one release store; when the ring is full the span is dropped and counted,
 * never waited for: exporting never blocks or slows a request. */

#define TG_SPAN_SERVER 2 /* OTLP SpanKind */
#define TG_SPAN_CLIENT 3

/* One finished span, every string copied (the request is gone when it is exported). */
struct tg_span {
    char trace_id[33];  /* 32 lower-case hex */
    char span_id[17];   /* 16 lower-case hex */
    char parent_id[17]; /* "" for a root span */
    int kind;           /* TG_SPAN_SERVER or TG_SPAN_CLIENT */
    uint64_t start_ns;  /* Unix time, nanoseconds */
    uint64_t end_ns;
    bool error;            /* status ERROR: 5xx (server), 4xx, 5xx or no answer (client) */
    int status;            /* HTTP status; 0 when none came */
    char name[96];         /* "GET patient_report" (server), "GET" (client) */
    char method[24];       /* http.request.method */
    char route[128];       /* server: http.route, the route's pattern */
    char route_name[64];   /* server: tracegate.route */
    char scheme[8];        /* server: url.scheme */
    char protocol[8];      /* server: network.protocol.version, "1.1" */
    char peer[64];         /* server: client.address; client: server.address */
    unsigned port;         /* client: server.port */
    char peer_ip[48];      /* client: network.peer.address, when connected */
    char user_agent[160];  /* server: user_agent.original (cut) */
    char upstream[64];     /* client: tracegate.upstream */
    char error_type[32];   /* error.type: "504", "timeout", ... */
    unsigned resend_count; /* client: http.request.resend_count */
};

/* A worker's ring. */
struct tg_span_ring {
    size_t cap;          /* a power of two */
    _Atomic size_t head; /* next slot to fill: written by the worker */
    _Atomic size_t tail; /* next slot to export: written by the exporter */
    int wake_fd;         /* the exporter's eventfd, written when 1 or wake_at spans wait */
    size_t wake_at;
    _Atomic uint64_t dropped; /* full: written by the worker only */
    struct tg_span slots[];
};

/* A ring of at least cap slots (rounded up to a power of two), waking wake_fd at wake_at
 * spans. NULL when out of memory. Free with free(). */
struct tg_span_ring *tg_span_ring_new(size_t cap, int wake_fd, size_t wake_at);

/* A slot to fill (zeroed), or NULL when the ring is full (counted in dropped). Producer only;
 * tg_span_ring_commit publishes it. */
struct tg_span *tg_span_ring_reserve(struct tg_span_ring *r);
void tg_span_ring_commit(struct tg_span_ring *r);

/* Spans waiting. Any thread. */
size_t tg_span_ring_count(const struct tg_span_ring *r);

/* Copies up to max spans into out, oldest first, and frees their slots. Returns how many.
 * Consumer only. */
size_t tg_span_ring_pop(struct tg_span_ring *r, struct tg_span *out, size_t max);

/* CLOCK_MONOTONIC microseconds (tg_now_us) as Unix nanoseconds. Any thread. */
uint64_t tg_span_unix_ns(uint64_t mono_us);

/* Copies s into a fixed field of cap bytes, cut if needed. */
void tg_span_copy(char *dst, size_t cap, const char *s);

#endif
