#ifndef TG_GATEWAY_HEALTH_H
#define TG_GATEWAY_HEALTH_H

#include "gateway/err.h"

struct tg_conf;

/* Active health checks: one thread of its own, with its own loop and upstream client, that
 * checks every target of every upstream with a "health_check" (method, path, expected statuses)
 * once an interval (the idle interval while the upstream had no call since the last check).
 * unhealthy failed checks in a row mark a target down (it gets no calls), healthy passed ones
 * bring it back; a passed check also ends an ejection. A target starts usable. What it finds
 * goes to the targets' shared state (gateway/pool.h), so a reload keeps it, and to the log:
 * upstream.target_down, upstream.target_up. */
struct tg_health;

/* Starts the checker on conf (a reference is taken). TG_OK, or a negative tg_err (logged) and
 * *out NULL. */
int tg_health_start(struct tg_conf *conf, struct tg_health **out) TG_MUST_CHECK;

/* Hands conf (a reference is taken) to the checker: checks in flight are dropped and every
 * target of conf is checked from now on. Main thread. */
void tg_health_reload(struct tg_health *h, struct tg_conf *conf);

/* Stops the checker (checks in flight are dropped), waits for its thread and frees it. NULL is
 * a no-op. Main thread. */
void tg_health_stop(struct tg_health *h);

#endif
