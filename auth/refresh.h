#ifndef TG_AUTH_REFRESH_H
#define TG_AUTH_REFRESH_H

/* The JWKS refresher: one thread with its own event loop and upstream client (the libcurl multi
 * every upstream call goes through), so that fetching keys never blocks a worker. It fetches
 * each jwks_url issuer's key set at once, then every jwks_refresh_s; after a failure it keeps
 * the last good set and tries again sooner (1 s, doubling to 60 s); a token naming an unknown
 * kid makes it fetch again, at most once per 30 s per issuer. */

#include "gateway/err.h"

struct tg_conf;
struct tg_auth_refresher;

/* Starts the refresher on conf (a reference is taken) and fetches its issuers' keys. TG_OK with
 * *out, or a negative tg_err (logged). Main thread. */
int tg_auth_refresher_start(struct tg_conf *conf, struct tg_auth_refresher **out) TG_MUST_CHECK;

/* Hands the refresher a reloaded conf (a reference is taken): fetches for the old one stop,
 * the new one's issuers are fetched (tg_auth_inherit has given them the old keys). Main
 * thread. */
void tg_auth_refresher_set_conf(struct tg_auth_refresher *r, struct tg_conf *conf);

/* Cancels what is in flight, stops the thread and frees it. NULL is a no-op. Main thread,
 * after the workers stopped. */
void tg_auth_refresher_stop(struct tg_auth_refresher *r);

#endif
