#ifndef TG_ROUTES_LOCAL_H
#define TG_ROUTES_LOCAL_H

#include "gateway/handler.h"

struct tg_req;

/* The local handler's part of a route: which answer the gateway makes itself. */
struct tg_local_conf {
    const char *what;                 /* "health", "ready" or "metrics" (static) */
    int (*serve)(struct tg_req *req); /* makes it */
};

extern const struct tg_handler_ops tg_handler_local;

#endif
