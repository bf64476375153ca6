#include "middleware/chain.h"

#include <assert.h>

#include "gateway/err.h"
#include "gateway/handler.h"

/* A middleware's or handler's result as the chain's: errors become the JSON error answer. */
static int settle(struct tg_req *req, int rc)
{
    return rc < 0 ? tg_req_fail(req, rc, req->end.detail) : rc;
}

int tg_chain_headers(const struct tg_chain *chain, struct tg_req *req)
{
    for (size_t i = 0; i < chain->headers.n; i++) {
        int rc = chain->headers.mws[i]->on_headers(req);
        if (rc != TG_MW_NEXT) {
            settle(req, rc);
            return TG_MW_DONE;
        }
    }
    return TG_MW_NEXT;
}

int tg_chain_request(const struct tg_chain *chain, struct tg_req *req)
{
    for (size_t i = 0; i < chain->request.n; i++) {
        int rc = chain->request.mws[i]->on_request(req);
        if (rc != TG_MW_NEXT) {
            return settle(req, rc);
        }
    }
    /* The headers phase routed every request that reaches here. */
    assert(req->policy != NULL && req->policy->handler != NULL);
    return settle(req, req->policy->handler->serve(req));
}

void tg_chain_response(const struct tg_chain *chain, struct tg_req *req)
{
    for (size_t i = 0; i < chain->response.n; i++) {
        chain->response.mws[i]->on_response(req);
    }
}

void tg_chain_done(const struct tg_chain *chain, struct tg_req *req)
{
    for (size_t i = 0; i < chain->done.n; i++) {
        chain->done.mws[i]->on_done(req);
    }
}
