#include "middleware/chain.h"

#include "gateway/err.h"

int tg_chain_headers(const struct tg_chain *chain, struct tg_req *req)
{
    for (size_t i = 0; i < chain->n; i++) {
        int rc;
        if (chain->mws[i]->on_headers == NULL) {
            continue;
        }
        rc = chain->mws[i]->on_headers(req);
        if (rc < 0) {
            /* on_response of the ones before must still run: they count as having run. */
            req->mw_ran = i + 1;
            return tg_req_fail(req, rc, req->err_detail);
        }
        if (rc != TG_MW_NEXT) {
            req->mw_ran = i + 1;
            return TG_MW_DONE;
        }
    }
    /* Every middleware has seen the request now: an answer the server makes before the chain
     * runs (a chunked body over the limit) still gets the trace header and the access log. */
    req->mw_ran = chain->n;
    return TG_MW_NEXT;
}

int tg_chain_run(const struct tg_chain *chain, struct tg_req *req)
{
    while (req->mw_next < chain->n) {
        const struct tg_mw_ops *mw = chain->mws[req->mw_next++];
        int rc;

        if (req->mw_next > req->mw_ran) {
            req->mw_ran = req->mw_next;
        }
        rc = mw->on_request(req);
        if (rc < 0) {
            return tg_req_fail(req, rc, req->err_detail);
        }
        if (rc != TG_MW_NEXT) {
            return rc;
        }
    }
    /* The router is last and always answers; reaching here is a wiring bug. */
    return tg_req_fail(req, TG_EINTERNAL, "no handler");
}

void tg_chain_response(const struct tg_chain *chain, struct tg_req *req)
{
    while (req->mw_ran > 0) {
        const struct tg_mw_ops *mw = chain->mws[--req->mw_ran];
        if (mw->on_response != NULL) {
            mw->on_response(req);
        }
    }
}
