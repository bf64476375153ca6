/* The local handler: answers the gateway makes itself (health, readiness, metrics). */
#include "routes/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/metrics.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "routes/table.h"

static int answer(struct tg_req *req, int status, const char *ctype, const char *text)
{
    char *body = strdup(text);

    if (body == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = status;
    tg_resp_set_body(&req->resp, body, strlen(body));
    tg_resp_add_header(&req->resp, "Content-Type", ctype);
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    return TG_MW_DONE;
}

/* Prometheus text exposition of every family (gateway/metrics.c), summed over the workers. */
static int metrics(struct tg_req *req)
{
    struct tg_buf out = {0};
    char *text;
    size_t len;

    if (tg_metrics_write(&out, req->conf) != TG_OK) {
        tg_buf_cleanup(&out);
        return TG_ENOMEM;
    }
    text = tg_buf_steal(&out, &len);
    if (text == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = 200;
    tg_resp_set_body(&req->resp, text, len);
    tg_resp_add_header(&req->resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    return TG_MW_DONE;
}

static int health(struct tg_req *req)
{
    return answer(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Readiness fails as soon as a drain starts, so balancers stop sending work here. */
static int ready(struct tg_req *req)
{
    if (atomic_load(&tg_stats.draining)) {
        return answer(req, tg_err_http_status(TG_EDRAIN), "application/json",
                      "{\"status\":\"draining\"}");
    }
    return answer(req, 200, "application/json", "{\"status\":\"ready\"}");
}

static const struct tg_local_conf locals[] = {
    {"health", health},
    {"ready", ready},
    {"metrics", metrics},
};

static int local_serve(struct tg_req *req)
{
    const struct tg_local_conf *lc = req->policy->handler_conf;

    return lc->serve(req);
}

/* The conf points at one of the static locals: nothing to free. */
static int local_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *what = NULL;
    int rc = tg_conf_get_str(rl->ctx, rl->obj, rl->jpath, "local", true, &what);

    if (rc != TG_OK) {
        return rc;
    }
    for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
        if (strcmp(what, locals[i].what) == 0) {
            *out = (void *)&locals[i]; /* read-only through handler_conf */
            return TG_OK;
        }
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "local"),
                         "unknown local handler %s: expected \"health\", \"ready\" or "
                         "\"metrics\"",
                         tg_jpos_quote(quoted, sizeof(quoted), what));
}

const struct tg_handler_ops tg_handler_local = {
    .key = "local",
    .load = local_load,
    .serve = local_serve,
};
