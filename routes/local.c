/* The local handler: answers the gateway makes itself (health, readiness, metrics, build and
 * conf info), on routes of the public listener (with an optional allow list of client
 * networks) and on the admin listener. */
#include "routes/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/issuer.h"
#include "gateway/build.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/metrics.h"
#include "gateway/netaddr.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "routes/table.h"

/* What a local route answers. */
struct local_kind {
    const char *what;                 /* its value of "local" */
    int (*serve)(struct tg_req *req); /* makes the answer */
};

static const char *const local_keys[] = {"allow", NULL};

static int answer(struct tg_req *req, int status, const char *ctype, char *body, size_t len)
{
    if (body == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = status;
    tg_resp_set_body(&req->resp, body, len);
    tg_resp_add_header(&req->resp, "Content-Type", ctype);
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    return TG_MW_DONE;
}

static int answer_text(struct tg_req *req, int status, const char *ctype, const char *text)
{
    char *body = strdup(text);

    return answer(req, status, ctype, body, body != NULL ? strlen(body) : 0);
}

/* Prometheus text exposition of every family (gateway/metrics.c), summed over the workers. */
static int metrics(struct tg_req *req)
{
    struct tg_buf out = {0};
    char *text;
    size_t len = 0;

    if (tg_metrics_write(&out, req->conf) != TG_OK) {
        tg_buf_cleanup(&out);
        return TG_ENOMEM;
    }
    text = tg_buf_steal(&out, &len);
    return answer(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static int health(struct tg_req *req)
{
    return answer_text(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Readiness fails as soon as a drain starts, so balancers stop sending work here; until every
 * token issuer has its first key set; and while an upstream the conf's ready.requires names has
 * no usable target, so an orchestrator stops sending patients to a gateway whose questionnaire
 * service is gone; and while the spool cannot take submissions (full, failed), so they go
 * to a node that can. */
static int ready(struct tg_req *req)
{
    const struct tg_conf *conf = req->conf;
    uint64_t now = tg_now_us();
    json_t *down = NULL, *body;
    char *text;
    int spool = atomic_load(&tg_stats.durable.health);

    if (atomic_load(&tg_stats.draining)) {
        return answer_text(req, tg_err_http_status(TG_EDRAIN), "application/json",
                           "{\"status\":\"draining\"}");
    }
    if (spool == TG_SPOOL_FULL || spool == TG_SPOOL_FAILED) {
        return answer_text(req, tg_err_http_status(TG_ESPOOL), "application/json",
                           spool == TG_SPOOL_FULL ? "{\"status\":\"spool full\"}"
                                                  : "{\"status\":\"spool failed\"}");
    }
    if (!tg_auth_is_ready(conf->auth)) {
        return answer_text(req, tg_err_http_status(TG_EOVERLOAD), "application/json",
                           "{\"status\":\"waiting for signing keys\"}");
    }
    for (size_t i = 0; i < conf->n_ready_requires; i++) {
        const struct tg_upstream *u = conf->ready_requires[i];
        if (tg_pool_usable_count(u, now) > 0) {
            continue;
        }
        if (down == NULL && (down = json_array()) == NULL) {
            return TG_ENOMEM;
        }
        json_array_append_new(down, json_string(u->name));
    }
    if (down == NULL) {
        return answer_text(req, 200, "application/json", "{\"status\":\"ready\"}");
    }
    body = json_pack("{s:s, s:o}", "status", "not ready", "unavailable", down);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        return TG_ENOMEM;
    }
    return answer(req, tg_err_http_status(TG_EUNSTABLE), "application/json", text, strlen(text));
}

/* us (CLOCK_REALTIME microseconds) as "2026-01-02T03:04:05.678Z". */
static json_t *iso_time(uint64_t us)
{
    time_t sec = (time_t)(us / 1000000u);
    struct tm tm;
    char buf[40], out[48];

    gmtime_r(&sec, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof(out), "%s.%03uZ", buf, (unsigned)(us % 1000000u / 1000u));
    return json_string(out);
}

/* What runs: the build, and the conf (file, checksum, when loaded): which conf is live where. */
static int info(struct tg_req *req)
{
    struct tg_build b;
    const struct tg_conf *c = req->conf;
    json_t *o;
    char *text = NULL;

    tg_build_get(&b);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:{s:s, s:s, s:o, s:I, s:I}}",
                  "version", b.version, "commit", b.commit, "libmicrohttpd", b.libmicrohttpd,
                  "libcurl", b.libcurl, "jansson", b.jansson, "openssl", b.openssl, "started_at",
                  iso_time(tg_stats.started_us), "draining", atomic_load(&tg_stats.draining),
                  "conf", "file", c->file, "checksum", c->checksum, "loaded_at",
                  iso_time(c->loaded_us), "routes", (json_int_t)tg_route_table_count(c->routes),
                  "upstreams", (json_int_t)c->n_upstreams);
    if (o != NULL) {
        text = json_dumps(o, JSON_COMPACT);
    }
    json_decref(o);
    return answer(req, 200, "application/json", text, text != NULL ? strlen(text) : 0);
}

static const struct local_kind kinds[] = {
    {"health", health},
    {"ready", ready},
    {"metrics", metrics},
    {"info", info},
};

static int local_serve(struct tg_req *req)
{
    const struct tg_local_conf *lc = req->policy->handler_conf;

    if (lc->n_allow > 0 &&
        !tg_cidr_contains(lc->allow, lc->n_allow, req->client_ip, strlen(req->client_ip))) {
        req->end.detail = "client network not in the route's allow list";
        return TG_ENOTALLOWED;
    }
    return lc->kind->serve(req);
}

/* ---- the admin listener's routes ---------------------------------------------------------- */

static const struct tg_local_conf admin_confs[] = {
    {"health", &kinds[0], NULL, 0},
    {"ready", &kinds[1], NULL, 0},
    {"metrics", &kinds[2], NULL, 0},
    {"info", &kinds[3], NULL, 0},
};

#define ADMIN_POLICY(route, i)                                                           \
    {                                                                                    \
        .name = (route), .path = (route) + 6, .handler = &tg_handler_local,              \
        .handler_conf = (void *)&admin_confs[i], .timeout_ms = TG_ROUTE_TIMEOUT_DEFAULT, \
        .cancel_on_disconnect = true, .access_log = false,                               \
    }

static const struct tg_policy admin_policies[] = {
    ADMIN_POLICY("admin /healthz", 0),
    ADMIN_POLICY("admin /readyz", 1),
    ADMIN_POLICY("admin /metrics", 2),
    ADMIN_POLICY("admin /info", 3),
};

const struct tg_policy *tg_local_admin_route(const char *path, size_t len)
{
    static const char *const paths[] = {"/healthz", "/readyz", "/metrics", "/info"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (strlen(paths[i]) == len && memcmp(paths[i], path, len) == 0) {
            return &admin_policies[i];
        }
    }
    return NULL;
}

/* ---- conf -------------------------------------------------------------------------------- */

static void local_cleanup(void *conf)
{
    struct tg_local_conf *lc = conf;

    if (lc != NULL) {
        free(lc->allow);
        free(lc);
    }
}

/* "allow": client networks, ["10.0.0.0/8", "127.0.0.1", "::1"]. */
static int load_allow(const struct tg_route_load *rl, struct tg_local_conf *lc)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX], quoted[96];
    json_t *arr = NULL;
    size_t n;
    int rc = tg_conf_get_json(rl->ctx, rl->obj, rl->jpath, "allow", JSON_ARRAY, false, &arr);

    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "allow");
    n = json_array_size(arr);
    if (n == 0 || n > 64) {
        return tg_conf_error(rl->ctx, path, "expected 1..64 client networks, got %zu", n);
    }
    lc->allow = calloc(n, sizeof(*lc->allow));
    if (lc->allow == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        tg_jpos_path_index(ipath, sizeof(ipath), path, i);
        if (!json_is_string(v)) {
            return tg_conf_error(rl->ctx, ipath, "expected a string, got %s", tg_conf_type_name(v));
        }
        if (tg_cidr_parse(json_string_value(v), &lc->allow[i]) != TG_OK) {
            return tg_conf_error(rl->ctx, ipath,
                                 "bad client network %s: expected an address or address/prefix "
                                 "(\"10.0.0.0/8\", \"::1\") without host bits",
                                 tg_jpos_quote(quoted, sizeof(quoted), json_string_value(v)));
        }
        lc->n_allow = i + 1;
    }
    return TG_OK;
}

static int local_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *what = NULL;
    struct tg_local_conf *lc = calloc(1, sizeof(*lc));
    int rc;

    if (lc == NULL) {
        return TG_ENOMEM;
    }
    *out = lc; /* freed with the route from here on */
    rc = tg_conf_get_str(rl->ctx, rl->obj, rl->jpath, "local", true, &what);
    if (rc != TG_OK) {
        return rc;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(what, kinds[i].what) == 0) {
            lc->kind = &kinds[i];
            lc->what = kinds[i].what;
            return load_allow(rl, lc);
        }
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "local"),
                         "unknown local handler %s: expected \"health\", \"ready\", "
                         "\"metrics\" or \"info\"",
                         tg_jpos_quote(quoted, sizeof(quoted), what));
}

const struct tg_handler_ops tg_handler_local = {
    .key = "local",
    .keys = local_keys,
    .load = local_load,
    .cleanup = local_cleanup,
    .serve = local_serve,
};
