#ifndef TG_GATEWAY_ADMIN_H
#define TG_GATEWAY_ADMIN_H

#include "gateway/err.h"

struct tg_conf;
struct tg_server_app;
struct tg_server_opts;

/* The admin listener (Envoy's admin port): a second HTTP server, on a thread and loop of its
 * own, for operators and probes (/metrics, /healthz, /readyz, /info), apart from the
 * patient-facing port. It is not drained: it answers (readiness 503) while the workers drain,
 * and stops after them. Its requests are not counted in the request metrics. */
struct tg_admin;

/* Starts it with server options o (o->host, o->port: 0 lets the kernel pick) and app, on conf
 * (a reference is taken). *port gets the bound port. TG_OK, or a negative tg_err (logged) and
 * *out NULL. Main thread. */
int tg_admin_start(const struct tg_server_opts *o, const struct tg_server_app *app,
                   struct tg_conf *conf, unsigned *port, struct tg_admin **out) TG_MUST_CHECK;

/* New admin requests use conf from now on (a reference is taken). Main thread. */
void tg_admin_reload(struct tg_admin *a, struct tg_conf *conf);

/* Stops the thread, closes the listener and frees everything. NULL is a no-op. Main thread. */
void tg_admin_stop(struct tg_admin *a);

#endif
