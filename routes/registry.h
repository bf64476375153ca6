#ifndef TG_ROUTES_REGISTRY_H
#define TG_ROUTES_REGISTRY_H

#include "gateway/handler.h"

/* Every handler a route can name, NULL-terminated (routes/registry.c). */
extern const struct tg_handler_ops *const tg_handlers[];

#endif
