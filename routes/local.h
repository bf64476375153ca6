#ifndef TG_ROUTES_LOCAL_H
#define TG_ROUTES_LOCAL_H

#include <stddef.h>

#include "gateway/handler.h"

struct tg_cidr;
struct tg_policy;
struct tg_req;
struct local_kind;

/* The local handler's part of a route: which answer the gateway makes itself, and who may ask
 * for it. */
struct tg_local_conf {
    const char *what;              /* "health", "ready", "metrics" or "info" (static) */
    const struct local_kind *kind; /* what answers it (static) */
    struct tg_cidr *allow;         /* owned: client networks allowed, NULL = any */
    size_t n_allow;
};

extern const struct tg_handler_ops tg_handler_local;

/* The admin listener's routes: the policy serving path (len bytes: /metrics, /healthz,
 * /readyz, /info), static, or NULL. They allow every client: the listener's address is what
 * keeps it private. Any thread. */
const struct tg_policy *tg_local_admin_route(const char *path, size_t len);

#endif
