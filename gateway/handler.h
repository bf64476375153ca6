#ifndef TG_GATEWAY_HANDLER_H
#define TG_GATEWAY_HANDLER_H

#include <stddef.h>

#include <jansson.h>

struct tg_req;
struct tg_route_load;  /* routes/table.h: what a handler's load reads */
struct tg_route_table; /* routes/table.h: every route, for link */

/* What answers a route, described by itself (h2o's on_req registration, nginx's command
 * tables). One static const instance per handler file under routes/, listed once in
 * routes/registry.c. The route table picks a route's handler by key, lets it load its part of
 * the route, and stores the result in the route's policy; the chain calls serve; the server
 * calls cancel through tg_req_cancel. */
struct tg_handler_ops {
    const char *key;         /* the route key that selects it: "upstream", "backends", ... */
    const char *const *keys; /* further route keys it reads (NULL-terminated), may be NULL */
    /* Parses its part of the route into *conf (owned by the route, freed with cleanup).
     * TG_OK, or TG_EINVAL with a FILE:LINE:COL error set through the load's conf ctx. */
    int (*load)(const struct tg_route_load *rl, void **conf);
    void (*cleanup)(void *conf); /* NULL-safe */
    /* Once every route of the table is loaded: ties conf to other routes it names (a durable
     * route and its status route). TG_OK, or TG_EINVAL with the error set through rl's ctx.
     * NULL for handlers that name no other route. */
    int (*link)(const struct tg_route_load *rl, void *conf, const struct tg_route_table *t);
    /* Runs once the body is complete (or, when stream_body said so, once the headers are in),
     * req->policy and req->match are set and the deadline is known: TG_MW_DONE (req->resp
     * ready), TG_MW_ASYNC (calls run; tg_req_complete() follows once req->resp is ready) or a
     * negative tg_err. */
    int (*serve)(struct tg_req *req);
    /* After the headers phase: the body length past which this request's body streams, or
     * SIZE_MAX for never (NULL: never). A body announced longer streams from the start; a
     * chunked one is held until it grows past it. serve then runs at once and takes what
     * req->body holds, then the rest from req->body_stream as it arrives. */
    size_t (*stream_body_above)(const struct tg_req *req);
    /* The client left (TG_ECANCELED), the gateway drains (TG_EDRAIN), ...: stop every call,
     * settle req->resp (an error for err) and complete the request. NULL for handlers that
     * never return TG_MW_ASYNC. */
    void (*cancel)(struct tg_req *req, int err);
};

#endif
