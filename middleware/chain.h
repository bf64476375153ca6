#ifndef TG_MIDDLEWARE_CHAIN_H
#define TG_MIDDLEWARE_CHAIN_H

#include <stddef.h>

#include "gateway/req.h"

/* A middleware: one static const instance per .c file, listed in the phases it acts in
 * (gateway/main.c writes the phases down). A hook a phase calls must be set. */
struct tg_mw_ops {
    const char *name;
    /* Headers phase, before the body is read: TG_MW_NEXT, TG_MW_DONE (req->resp is an early
     * answer) or a negative tg_err (the JSON error for it, req->end.detail saying why). */
    int (*on_headers)(struct tg_req *req);
    /* Request phase, the body complete, before the handler: TG_MW_NEXT, TG_MW_DONE or a
     * negative tg_err, as on_headers. */
    int (*on_request)(struct tg_req *req);
    /* Response phase: every answer, early ones and errors included, just before it leaves. */
    void (*on_response)(struct tg_req *req);
    /* Done phase: the end is decided (req->end final); nothing can change the answer. */
    void (*on_done)(struct tg_req *req);
};

/* The middlewares of one phase, in the order they run. */
struct tg_phase {
    const struct tg_mw_ops *const *mws; /* borrowed */
    size_t n;
};

/* The chain, phase by phase. */
struct tg_chain {
    struct tg_phase headers;
    struct tg_phase request;
    struct tg_phase response;
    struct tg_phase done;
};

/* Runs the headers phase until one middleware answers. Returns TG_MW_NEXT (read the body) or
 * TG_MW_DONE (req->resp set). */
int tg_chain_headers(const struct tg_chain *chain, struct tg_req *req);

/* Runs the request phase, then the route's handler (req->policy->handler->serve). Returns
 * TG_MW_DONE (req->resp set) or TG_MW_ASYNC. */
int tg_chain_request(const struct tg_chain *chain, struct tg_req *req);

/* Runs the response phase on req->resp. */
void tg_chain_response(const struct tg_chain *chain, struct tg_req *req);

/* Runs the done phase. */
void tg_chain_done(const struct tg_chain *chain, struct tg_req *req);

#endif
