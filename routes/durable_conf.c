/* The "durable" block of a proxy route (routes/durable.h): its keys, their defaults and checks,
 * the link to its status route, and the two small rules the rest reads (the key's syntax, the
 * backoff). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/jsonpos.h"
#include "gateway/stats.h"
#include "routes/durable.h"
#include "routes/proxy.h"
#include "routes/registry.h"
#include "routes/submission.h"
#include "routes/table.h"
#include "spool/seal.h"
#include "spool/store.h"

#define DAY_S 86400u

static const char *const durable_keys[] = {
    "mode",
    "sync_wait_ms",
    "require_key",
    "forward_key_as",
    "key_scope_header",
    "order_by_header",
    "on_dead",
    "backend_dedup",
    "duplicate_status",
    "store_headers",
    "retry",
    "delivery_concurrency",
    "drain_rps",
    NULL,
};
static const char *const retry_keys[] = {
    "base_ms", "cap_ms", "max_age_s", "attempt_timeout_ms", "on_status", NULL,
};
static const int default_on_status[] = {408, 425, 429, 500, 502, 503, 504};
static const char *const default_store[] = {"Content-Type", "Accept"};

void tg_durable_free(struct tg_durable_conf *dc)
{
    if (dc == NULL) {
        return;
    }
    free(dc->forward_key_as);
    free(dc->key_scope_header);
    free(dc->order_by_header);
    free(dc->duplicate_status);
    tg_conf_strs_free(dc->store_headers, dc->n_store_headers);
    free(dc->retry.on_status);
    free(dc);
}

/* An optional header name at jpath.key: an HTTP token, copied. */
static int get_header(const struct tg_route_load *rl, const json_t *o, const char *jpath,
                      const char *key, char **out)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *v = NULL;
    int rc = tg_conf_get_str(rl->ctx, o, jpath, key, false, &v);

    if (rc != TG_OK || v == NULL) {
        return rc;
    }
    if (!tg_conf_is_token(v) || strlen(v) > 64) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                             "bad header name %s: expected an HTTP token of at most 64 characters",
                             tg_jpos_quote(quoted, sizeof(quoted), v));
    }
    free(*out);
    *out = strdup(v);
    return *out != NULL ? TG_OK : TG_ENOMEM;
}

/* A string that must be one of two words: *first is true for the first. */
static int get_choice(const struct tg_route_load *rl, const json_t *o, const char *jpath,
                      const char *key, const char *a, const char *b, bool *first)
{
    char path[TG_JPATH_MAX], quoted[96];
    const char *v = NULL;
    int rc = tg_conf_get_str(rl->ctx, o, jpath, key, false, &v);

    if (rc != TG_OK || v == NULL) {
        return rc;
    }
    if (strcmp(v, a) != 0 && strcmp(v, b) != 0) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), jpath, key),
                             "unknown %s %s: expected \"%s\" or \"%s\"", key,
                             tg_jpos_quote(quoted, sizeof(quoted), v), a, b);
    }
    *first = strcmp(v, a) == 0;
    return TG_OK;
}

static int load_retry(const struct tg_route_load *rl, const json_t *d, const char *dpath,
                      struct tg_durable_retry *r)
{
    char path[TG_JPATH_MAX];
    json_t *o = NULL;
    int rc = tg_conf_get_json(rl->ctx, d, dpath, "retry", JSON_OBJECT, false, &o);

    if (rc != TG_OK || o == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), dpath, "retry");
    rc = tg_conf_check_keys(rl->ctx, o, path, retry_keys);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(rl->ctx, o, path, "base_ms", 1, TG_CONF_HOUR_MS, &r->base_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, o, path, "cap_ms", 1, 24 * TG_CONF_HOUR_MS,
                                            &r->cap_ms);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(rl->ctx, o, path, "max_age_s", 1, 365 * DAY_S, &r->max_age_s);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, o, path, "attempt_timeout_ms", 1,
                                            TG_CONF_HOUR_MS, &r->attempt_timeout_ms);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_ints(rl->ctx, o, path, "on_status", 400, 599, &r->on_status,
                                        &r->n_on_status);
    if (rc == TG_OK && r->cap_ms < r->base_ms) {
        char cpath[TG_JPATH_MAX];
        return tg_conf_error(rl->ctx, tg_jpos_path_key(cpath, sizeof(cpath), path, "cap_ms"),
                             "cap_ms (%u) is below base_ms (%u)", r->cap_ms, r->base_ms);
    }
    return rc;
}

/* Everything that is not about retries, in the order of conf/README.md. */
static int load_keys(const struct tg_route_load *rl, const json_t *d, const char *path,
                     struct tg_durable_conf *dc)
{
    bool on_failure = true;
    bool skip = true;
    int rc = tg_conf_check_keys(rl->ctx, d, path, durable_keys);

    rc = rc != TG_OK ? rc : get_choice(rl, d, path, "mode", "on_failure", "always", &on_failure);
    dc->mode = on_failure ? TG_DURABLE_ON_FAILURE : TG_DURABLE_ALWAYS;
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, d, path, "sync_wait_ms", 0, TG_CONF_HOUR_MS,
                                            &dc->sync_wait_ms);
    rc = rc != TG_OK ? rc : tg_conf_get_bool(rl->ctx, d, path, "require_key", &dc->require_key);
    rc = rc != TG_OK ? rc : get_header(rl, d, path, "forward_key_as", &dc->forward_key_as);
    rc = rc != TG_OK ? rc : get_header(rl, d, path, "key_scope_header", &dc->key_scope_header);
    rc = rc != TG_OK ? rc : get_header(rl, d, path, "order_by_header", &dc->order_by_header);
    rc = rc != TG_OK ? rc : get_choice(rl, d, path, "on_dead", "skip", "hold", &skip);
    dc->hold_dead = !skip;
    rc = rc != TG_OK ? rc : tg_conf_get_bool(rl->ctx, d, path, "backend_dedup", &dc->backend_dedup);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_ints(rl->ctx, d, path, "duplicate_status", 200, 599,
                                        &dc->duplicate_status, &dc->n_duplicate_status);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_strs(rl->ctx, d, path, "store_headers", TG_DURABLE_STORE_MAX,
                                        &dc->store_headers, &dc->n_store_headers);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(rl->ctx, d, path, "delivery_concurrency", 1, 1024,
                                            &dc->delivery_concurrency);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_unsigned(rl->ctx, d, path, "drain_rps", 1, 100000, &dc->drain_rps);
    return rc != TG_OK ? rc : load_retry(rl, d, path, &dc->retry);
}

/* The defaults, before the conf's keys replace them. */
static int set_defaults(struct tg_durable_conf *dc)
{
    size_t n_store = sizeof(default_store) / sizeof(default_store[0]);

    dc->mode = TG_DURABLE_ON_FAILURE;
    dc->sync_wait_ms = 3000;
    dc->require_key = true;
    dc->backend_dedup = true;
    dc->delivery_concurrency = 4;
    dc->drain_rps = 20;
    dc->retry.base_ms = 1000;
    dc->retry.cap_ms = 300000;
    dc->retry.max_age_s = 3 * DAY_S;
    dc->retry.attempt_timeout_ms = 10000;
    dc->forward_key_as = strdup("Idempotency-Key");
    dc->retry.on_status = malloc(sizeof(default_on_status));
    dc->store_headers = calloc(n_store + 1, sizeof(*dc->store_headers));
    if (dc->forward_key_as == NULL || dc->retry.on_status == NULL || dc->store_headers == NULL) {
        return TG_ENOMEM;
    }
    memcpy(dc->retry.on_status, default_on_status, sizeof(default_on_status));
    dc->retry.n_on_status = sizeof(default_on_status) / sizeof(default_on_status[0]);
    for (size_t i = 0; i < n_store; i++) {
        dc->store_headers[i] = strdup(default_store[i]);
        if (dc->store_headers[i] == NULL) {
            return TG_ENOMEM;
        }
        dc->n_store_headers = i + 1;
    }
    return TG_OK;
}

/* What the route itself must be for a durable block: POST, a name the spool can keep, a spool,
 * and time to wait synchronously inside its budget. */
static int check_route(const struct tg_route_load *rl, const char *path,
                       const struct tg_durable_conf *dc)
{
    char spath[TG_JPATH_MAX];

    if (strcmp(rl->route->method, "POST") != 0) {
        return tg_conf_error(rl->ctx, path,
                             "durable is only for POST routes (a submission is stored and "
                             "delivered once; other methods are not submissions)");
    }
    if (rl->conf->spool == NULL) {
        return tg_conf_error(rl->ctx, path,
                             "a durable route needs the top-level \"spool\" block (where it "
                             "keeps what it accepted)");
    }
    if (strlen(rl->route->name) > TG_SPOOL_ROUTE_MAX) {
        return tg_conf_error(rl->ctx, path, "a durable route's name has at most %d characters",
                             TG_SPOOL_ROUTE_MAX);
    }
    for (size_t i = 0; i < dc->n_store_headers; i++) {
        if (!tg_conf_is_token(dc->store_headers[i])) {
            return tg_conf_error(rl->ctx,
                                 tg_jpos_path_key(spath, sizeof(spath), path, "store_headers"),
                                 "store_headers[%zu] is not a header name", i);
        }
    }
    if (dc->mode == TG_DURABLE_ON_FAILURE && dc->sync_wait_ms >= rl->route->policy.timeout_ms) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(spath, sizeof(spath), path, "sync_wait_ms"),
                             "sync_wait_ms (%u) must be below the route's timeout_ms (%u): the "
                             "202 must leave within the route's budget",
                             dc->sync_wait_ms, rl->route->policy.timeout_ms);
    }
    return TG_OK;
}

int tg_durable_load(const struct tg_route_load *rl, struct tg_durable_conf **out)
{
    char path[TG_JPATH_MAX];
    json_t *d = NULL;
    struct tg_durable_conf *dc;
    int rc = tg_conf_get_json(rl->ctx, rl->obj, rl->jpath, "durable", JSON_OBJECT, false, &d);

    *out = NULL;
    if (rc != TG_OK || d == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "durable");
    dc = calloc(1, sizeof(*dc));
    if (dc == NULL) {
        return TG_ENOMEM;
    }
    *out = dc; /* freed with the route from here on */
    rc = set_defaults(dc);
    rc = rc != TG_OK ? rc : load_keys(rl, d, path, dc);
    return rc != TG_OK ? rc : check_route(rl, path, dc);
}

const struct tg_durable_conf *tg_durable_of(const struct tg_route_table *t, const char *name,
                                            const struct tg_route **route)
{
    for (size_t i = 0; i < tg_route_table_count(t); i++) {
        const struct tg_route *r = tg_route_table_at(t, i);
        const struct tg_proxy_conf *pc = r->policy.handler_conf;
        if (r->policy.handler == &tg_handler_proxy && pc != NULL && pc->durable != NULL &&
            strcmp(r->name, name) == 0) {
            if (route != NULL) {
                *route = r;
            }
            return pc->durable;
        }
    }
    return NULL;
}

int tg_durable_link(const struct tg_route_load *rl, struct tg_durable_conf *dc,
                    const struct tg_route_table *t)
{
    char path[TG_JPATH_MAX];

    for (size_t i = 0; i < tg_route_table_count(t); i++) {
        const struct tg_route *r = tg_route_table_at(t, i);
        const struct tg_submission_conf *sc = r->policy.handler_conf;
        if (r->policy.handler == &tg_handler_submission && sc != NULL &&
            strcmp(sc->route, rl->route->name) == 0) {
            dc->status_path = r->path;
            return TG_OK;
        }
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "durable"),
                         "durable route \"%s\" has no status route: add {\"method\": \"GET\", "
                         "\"path\": \"/submissions/{id}\", \"submissions\": \"%s\"} (its 202 "
                         "answers point there)",
                         rl->route->name, rl->route->name);
}

int tg_durable_parse_key(const char *value, size_t len, char *out)
{
    size_t n;

    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        value++; /* the draft's sf-string; our alphabet has no '"' or '\\' to unescape */
        len -= 2;
    }
    n = 0;
    while (n < len &&
           strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", value[n]) !=
               NULL &&
           value[n] != '\0') {
        n++;
    }
    if (len == 0 || n != len || len > TG_SPOOL_KEY_MAX) {
        return TG_EKEY;
    }
    memcpy(out, value, len);
    out[len] = '\0';
    return TG_OK;
}

static bool listed(const int *list, size_t n, int status)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == status) {
            return true;
        }
    }
    return false;
}

int tg_durable_classify(const struct tg_durable_conf *dc, int status, bool sent)
{
    bool retry;

    if (status >= 200 && status < 300) {
        return TG_ATTEMPT_DELIVERED;
    }
    if (status > 0 && listed(dc->duplicate_status, dc->n_duplicate_status, status)) {
        return TG_ATTEMPT_DUPLICATE;
    }
    /* A 5xx is never the backend's last word; a 4xx is, unless the route lists it. */
    retry =
        status == 0 || status >= 500 || listed(dc->retry.on_status, dc->retry.n_on_status, status);
    if (!retry) {
        return TG_ATTEMPT_REJECTED;
    }
    /* No answer after the request may have reached the backend: without deduplication a
     * resend could store it twice, so an operator decides. An answer (a 5xx, a 429) says it was
     * not taken. */
    if (status == 0 && sent && !dc->backend_dedup) {
        return TG_ATTEMPT_UNKNOWN;
    }
    return TG_ATTEMPT_RETRY;
}

unsigned tg_durable_backoff_ms(const struct tg_durable_retry *r, unsigned attempt)
{
    uint64_t ceiling = r->base_ms;
    uint32_t rnd = 0;

    for (unsigned i = 1; i < attempt && ceiling < r->cap_ms; i++) {
        ceiling *= 2;
    }
    if (ceiling > r->cap_ms) {
        ceiling = r->cap_ms;
    }
    if (tg_seal_random(&rnd, sizeof(rnd)) != TG_OK) {
        rnd = UINT32_MAX / 2;
    }
    /* Full jitter (rand(0, ceiling)): retries of many records spread over the window instead of
     * arriving together when the backend comes back. */
    return (unsigned)((ceiling * (uint64_t)rnd) / UINT32_MAX) + 1;
}
