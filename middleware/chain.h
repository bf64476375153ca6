#ifndef TG_MIDDLEWARE_CHAIN_H
#define TG_MIDDLEWARE_CHAIN_H

#include <stddef.h>

#include "gateway/req.h"

/* A middleware: one static const instance per .c file. */
struct tg_mw_ops {
    const char *name;
    /* Headers are in, before the body is read: may answer early (TG_MW_DONE) or fail (<0).
     * Optional. */
    int (*on_headers)(struct tg_req *req);
    /* In chain order once the body is complete: TG_MW_NEXT, TG_MW_DONE, TG_MW_ASYNC or a
     * negative tg_err (turned into the JSON error answer). */
    int (*on_request)(struct tg_req *req);
    /* Reverse order, for each middleware whose on_request ran. Optional. */
    void (*on_response)(struct tg_req *req);
};

struct tg_chain {
    const struct tg_mw_ops *const *mws; /* borrowed, in order */
    size_t n;
};

/* Runs on_headers of every middleware in order until one answers. Returns TG_MW_NEXT or
 * TG_MW_DONE (req->resp set). */
int tg_chain_headers(const struct tg_chain *chain, struct tg_req *req);

/* Runs on_request from req->mw_next on. Returns TG_MW_DONE (req->resp set) or TG_MW_ASYNC. */
int tg_chain_run(const struct tg_chain *chain, struct tg_req *req);

/* Runs on_response in reverse order for each middleware whose on_request ran. Idempotent. */
void tg_chain_response(const struct tg_chain *chain, struct tg_req *req);

#endif
