#ifndef TG_GATEWAY_WORKER_H
#define TG_GATEWAY_WORKER_H

#include "gateway/err.h"

struct tg_conf;
struct tg_server_app;
struct tg_server_opts;

/* The gateway's workers: each a thread with its own loop, upstream client and HTTP server on
 * the shared port, running requests through app. Started, reloaded, drained and joined by the
 * main thread. */
struct tg_workers;

/* Starts n workers on conf (a reference each) with server options o; the first binds o->port,
 * the others the port it got (*port receives it). app is borrowed for the workers' lifetime.
 * On failure every started worker is stopped and *out is NULL. TG_OK or a negative tg_err. */
int tg_workers_start(unsigned n, struct tg_conf *conf, const struct tg_server_opts *o,
                     const struct tg_server_app *app, unsigned *port,
                     struct tg_workers **out) TG_MUST_CHECK;

/* Hands conf (a reference each) to every worker: new requests use it from their next pass. */
void tg_workers_reload(struct tg_workers *ws, struct tg_conf *conf);

/* Asks every worker to drain: stop accepting, let requests finish within the conf's
 * shutdown_grace_ms, cancel the rest (TG_EDRAIN: 503), then stop. Returns at once. */
void tg_workers_drain(struct tg_workers *ws);

/* Waits for every worker thread to end (their drain is over); they stay readable (their
 * counters) until tg_workers_join. Idempotent. NULL is a no-op. */
void tg_workers_wait(struct tg_workers *ws);

/* Waits for every worker to stop, then frees them. NULL is a no-op. */
void tg_workers_join(struct tg_workers *ws);

#endif
