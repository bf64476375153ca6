/* The return handler: a fixed answer from the conf, like NGINX's return (maintenance pages,
 * deprecations, a stub during a backend migration):
 *   "return": {"status": 503, "body": {"error": "maintenance"}, "headers": {"Retry-After": "600"}}
 * A JSON body goes out compact as application/json, a string body as text/plain; headers may
 * set another Content-Type. The trace headers are added as on every answer. */
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/handler.h"
#include "gateway/jsonpos.h"
#include "gateway/req.h"
#include "routes/table.h"

static const char *const return_keys[] = {"status", "body", "headers", NULL};

/* Framing and connection headers are the server's to write. */
static const char *const reserved[] = {
    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer", NULL,
};

struct return_conf {
    unsigned status;
    char *body; /* owned, NULL for none */
    size_t body_len;
    struct tg_resp hdrs; /* owned: only its header block is used */
};

static void return_cleanup(void *conf)
{
    struct return_conf *rc = conf;

    if (rc != NULL) {
        free(rc->body);
        tg_resp_cleanup(&rc->hdrs);
        free(rc);
    }
}

static int return_serve(struct tg_req *req)
{
    const struct return_conf *c = req->policy->handler_conf;
    size_t pos = 0;
    const char *name;
    const char *value;
    char *body = NULL;

    if (c->body != NULL) {
        body = malloc(c->body_len + 1);
        if (body == NULL) {
            return TG_ENOMEM;
        }
        memcpy(body, c->body, c->body_len + 1);
    }
    req->resp.status = (int)c->status;
    tg_resp_set_body(&req->resp, body, c->body_len);
    while (tg_resp_header_next(&c->hdrs, &pos, &name, &value)) {
        if (tg_resp_add_header(&req->resp, name, value) != TG_OK) {
            return TG_ENOMEM;
        }
    }
    return TG_MW_DONE;
}

static bool is_reserved(const char *name)
{
    for (size_t i = 0; reserved[i] != NULL; i++) {
        if (strcasecmp(reserved[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static bool is_field_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

static int load_headers(const struct tg_route_load *rl, const char *jpath, const json_t *obj,
                        struct return_conf *c, bool *has_type)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *name;
    json_t *v;

    json_object_foreach((json_t *)obj, name, v)
    {
        tg_jpos_path_key(path, sizeof(path), jpath, name);
        if (!tg_conf_is_token(name) || is_reserved(name)) {
            return tg_conf_error_key(rl->ctx, path,
                                     "bad header name %s: a token, not a framing or connection "
                                     "header",
                                     tg_jpos_quote(quoted, sizeof(quoted), name));
        }
        if (!json_is_string(v) || !is_field_value(json_string_value(v))) {
            return tg_conf_error(rl->ctx, path,
                                 "expected a string without control characters, got %s",
                                 tg_conf_type_name(v));
        }
        *has_type = *has_type || strcasecmp(name, "Content-Type") == 0;
        if (tg_resp_add_header(&c->hdrs, name, json_string_value(v)) != TG_OK) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

/* The body as it goes out, and its default Content-Type. */
static int load_body(const struct tg_route_load *rl, const json_t *body, struct return_conf *c,
                     const char **type)
{
    char path[TG_JPATH_MAX];

    if (c->status == 204 || c->status == 304) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "return"),
                             "status %u has no body", c->status);
    }
    if (json_is_string(body)) {
        c->body_len = json_string_length(body);
        c->body = malloc(c->body_len + 1);
        if (c->body != NULL) {
            memcpy(c->body, json_string_value(body), c->body_len + 1);
        }
        *type = "text/plain; charset=utf-8";
    } else {
        /* 15 significant digits: 0.1 stays 0.1 (jansson's default of 17 writes
         * 0.10000000000000001). */
        c->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        c->body_len = c->body != NULL ? strlen(c->body) : 0;
        *type = "application/json";
    }
    return c->body != NULL ? TG_OK : TG_ENOMEM;
}

static int return_load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX];
    struct return_conf *c = calloc(1, sizeof(*c));
    json_t *spec = NULL, *hdrs = NULL;
    const char *type = NULL;
    bool has_type = false;
    int rc;

    if (c == NULL) {
        return TG_ENOMEM;
    }
    *out = c; /* freed with the route from here on */
    c->status = 200;
    rc = tg_conf_get_json(rl->ctx, rl->obj, rl->jpath, "return", JSON_OBJECT, true, &spec);
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "return");
    rc = rc != TG_OK ? rc : tg_conf_check_keys(rl->ctx, spec, path, return_keys);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, spec, path, "status", 200, 599, &c->status);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_json(rl->ctx, spec, path, "headers", JSON_OBJECT, false, &hdrs);
    if (rc == TG_OK && hdrs != NULL) {
        char hpath[TG_JPATH_MAX];
        rc = load_headers(rl, tg_jpos_path_key(hpath, sizeof(hpath), path, "headers"), hdrs, c,
                          &has_type);
    }
    if (rc == TG_OK && json_object_get(spec, "body") != NULL) {
        rc = load_body(rl, json_object_get(spec, "body"), c, &type);
    }
    if (rc == TG_OK && type != NULL && !has_type) {
        rc = tg_resp_add_header(&c->hdrs, "Content-Type", type);
    }
    return rc;
}

const struct tg_handler_ops tg_handler_return = {
    .key = "return",
    .keys = NULL,
    .load = return_load,
    .cleanup = return_cleanup,
    .serve = return_serve,
};
