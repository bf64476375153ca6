#ifndef TG_GATEWAY_LISTEN_H
#define TG_GATEWAY_LISTEN_H

#include <stddef.h>

#include "gateway/err.h"

/* Whether another socket already listens on host:port (numeric host). The workers bind with
 * SO_REUSEPORT so that they can share their port; a second process of the same user could then
 * bind it too and silently take half the connections. A probe socket without SO_REUSEPORT
 * cannot bind where anyone listens, so this asks the kernel before the workers bind. Port 0 is
 * always free. TG_OK when free; TG_EINVAL when in use or the address cannot be bound, with why
 * written into why (cap bytes). Main thread, before the listeners start. */
int tg_listen_probe(const char *host, unsigned port, char *why, size_t cap) TG_MUST_CHECK;

#endif
