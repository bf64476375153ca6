#include "middleware/route.h"

#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "routes/local.h"
#include "routes/table.h"

/* Whether the Content-Length the client announced passes limit (its digits were checked by
 * validate). */
static bool announced_too_big(const struct tg_req *req, size_t limit)
{
    size_t len;
    const char *v = tg_req_header(req, "Content-Length", &len);
    unsigned long long n = 0;

    if (v == NULL) {
        return false;
    }
    for (size_t i = 0; i < len && n <= limit; i++) {
        n = n * 10 + (unsigned long long)(v[i] - '0');
    }
    return n > limit;
}

/* The route's patient parameter, for scopes and audit. */
static void set_patient(struct tg_req *req, const struct tg_route_match *m)
{
    const char *name = m->route->policy.patient_param;

    for (size_t i = 0; name != NULL && i < m->n_params; i++) {
        if (strcmp(m->params[i].name, name) == 0) {
            req->patient = m->params[i].value;
            req->patient_len = m->params[i].len;
        }
    }
}

static int route_on_headers(struct tg_req *req)
{
    const struct tg_route_table *t = req->conf->routes;
    struct tg_route_match *m = tg_req_alloc(req, NULL, sizeof(*m), NULL);
    char allow[128];
    int rc;

    if (m == NULL) {
        return TG_ENOMEM;
    }
    rc = tg_route_table_match(t, req->method, req->target, req->path_len, m);
    if (rc == TG_EMETHOD) {
        tg_route_table_allow(t, req->target, req->path_len, allow, sizeof(allow));
        tg_req_fail(req, TG_EMETHOD, NULL);
        tg_resp_add_header(&req->resp, "Allow", allow);
        return TG_MW_DONE;
    }
    if (rc == TG_EINVAL) {
        req->end.detail = "dot segment in path";
    }
    if (rc != TG_OK) {
        return rc;
    }
    req->policy = &m->route->policy;
    req->match = m;
    set_patient(req, m);
    if (announced_too_big(req, req->policy->max_body_bytes)) {
        req->end.detail = "request body too large";
        return TG_ETOOBIG;
    }
    return TG_MW_NEXT;
}

const struct tg_mw_ops tg_mw_route = {
    .name = "route",
    .on_headers = route_on_headers,
};

/* The admin listener's fixed routes (routes/local.c): GET and HEAD only. */
static int admin_on_headers(struct tg_req *req)
{
    const struct tg_policy *p = tg_local_admin_route(req->target, req->path_len);

    if (p == NULL) {
        req->end.detail = "not an admin path";
        return TG_ENOROUTE;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        tg_req_fail(req, TG_EMETHOD, NULL);
        tg_resp_add_header(&req->resp, "Allow", "GET, HEAD");
        return TG_MW_DONE;
    }
    req->policy = p;
    return TG_MW_NEXT;
}

const struct tg_mw_ops tg_mw_route_admin = {
    .name = "route_admin",
    .on_headers = admin_on_headers,
};
