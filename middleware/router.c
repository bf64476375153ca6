#include "middleware/router.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "routes/handler.h"
#include "routes/table.h"

static const struct tg_handler_ops *handler_for(enum tg_route_kind kind)
{
    switch (kind) {
    case TG_ROUTE_PROXY:
        return &tg_handler_proxy;
    case TG_ROUTE_FANOUT:
        return &tg_handler_fanout;
    case TG_ROUTE_LOCAL:
        return &tg_handler_local;
    }
    return NULL;
}

static int body_too_big(struct tg_req *req)
{
    size_t len;
    const char *v = tg_req_header(req, "Content-Length", &len);
    unsigned long long n = 0;

    if (v == NULL) {
        return 0;
    }
    for (size_t i = 0; i < len && n <= req->body_limit; i++) {
        n = n * 10 + (unsigned long long)(v[i] - '0'); /* digits checked by limits */
    }
    return n > req->body_limit;
}

static int router_on_headers(struct tg_req *req)
{
    const struct tg_route_table *t = req->conf->routes;
    struct tg_route_match *m = calloc(1, sizeof(*m));
    char allow[128];
    int rc;

    if (m == NULL) {
        return TG_ENOMEM;
    }
    req->match = m;
    rc = tg_route_table_match(t, req->method, req->target, req->path_len, m);
    if (rc == TG_EMETHOD) {
        tg_route_table_allow(t, req->target, req->path_len, allow, sizeof(allow));
        tg_req_fail(req, TG_EMETHOD, NULL);
        tg_resp_add_header(&req->resp, "Allow", allow);
        return TG_MW_DONE;
    }
    if (rc != TG_OK) {
        return rc;
    }
    req->route = m->route;
    req->route_name = m->route->name;
    req->route_timeout_ms = m->route->timeout_ms;
    req->accept_client_timeout = m->route->accept_client_timeout;
    req->cancel_on_disconnect = m->route->cancel_on_disconnect;
    req->body_limit = m->route->max_body_bytes;
    if (body_too_big(req)) {
        req->err_detail = "request body too large";
        return TG_ETOOBIG;
    }
    return TG_MW_NEXT;
}

static int router_on_request(struct tg_req *req)
{
    const struct tg_handler_ops *h = handler_for(req->route->kind);

    return h == NULL ? TG_EINTERNAL : h->serve(req);
}

const struct tg_mw_ops tg_mw_router = {
    .name = "router",
    .on_headers = router_on_headers,
    .on_request = router_on_request,
};
