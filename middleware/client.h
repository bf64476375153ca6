#ifndef TG_MIDDLEWARE_CLIENT_H
#define TG_MIDDLEWARE_CLIENT_H

#include "middleware/chain.h"

/* Headers phase, after validate: who the client is. When the peer is one of the conf's
 * trusted_proxies, X-Forwarded-For is read from the right, past the addresses of further
 * trusted proxies, and the first other address is the client (req->client_ip: logs, rate
 * limits, audit); an entry that is no address ends the walk. Any other peer is the client
 * itself, and its X-Forwarded-For is replaced upstream, not extended. */
extern const struct tg_mw_ops tg_mw_client;

#endif
