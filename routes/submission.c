/* The status route of a durable route (routes/submission.h): a lookup on the spool's reader
 * thread, so the worker's loop never waits for SQLite. */
#include "routes/submission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/req.h"
#include "gateway/wait.h"
#include "routes/durable.h"
#include "routes/table.h"
#include "spool/meta.h"
#include "spool/spool.h"

/* One lookup: the wait of the request and the reader's operation. */
struct lookup {
    struct tg_wait wait; /* first: the wait's callbacks get this pointer */
    struct tg_spool_op op;
};

/* The status document: metadata only (spool/meta.h). */
int tg_submission_answer(struct tg_req *req, const struct tg_spool_meta *m)
{
    json_t *o = tg_spool_meta_json(m, false);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (text == NULL) {
        return TG_ENOMEM;
    }
    req->resp.status = 200;
    tg_resp_set_body(&req->resp, text, strlen(text));
    tg_resp_add_header(&req->resp, "Content-Type", "application/json");
    tg_resp_add_header(&req->resp, "Cache-Control", "no-store");
    tg_resp_add_header(&req->resp, "Submission-Id", m->id);
    return TG_OK;
}

static void on_found(struct tg_req *req, struct tg_wait *w)
{
    struct lookup *lk = (struct lookup *)(void *)w;
    const struct tg_submission_conf *sc = req->policy->handler_conf;
    int rc = lk->op.rc;

    /* Another route's record is not this route's to show. */
    if (rc == TG_OK && strcmp(lk->op.u.get.meta.route, sc->route) != 0) {
        rc = TG_ENOTFOUND;
    }
    if (rc == TG_OK) {
        rc = tg_submission_answer(req, &lk->op.u.get.meta);
    }
    if (rc < 0) {
        tg_req_fail(req, rc == TG_ENOTFOUND ? rc : TG_ESPOOL,
                    rc == TG_ENOTFOUND ? "no such submission" : "spool lookup failed");
        if (rc != TG_ENOTFOUND) {
            tg_resp_add_header(&req->resp, "Retry-After", "5");
        }
    }
    tg_req_complete(req);
}

static void on_looked_up(struct tg_spool_op *op)
{
    struct lookup *lk = (struct lookup *)(void *)((char *)op - offsetof(struct lookup, op));

    tg_wait_wake(&lk->wait);
    tg_wait_drop(&lk->wait); /* the reader's hold */
}

static void release(struct tg_wait *w)
{
    free(w);
}

/* Ids are the spool's UUIDs: anything else is not there (and never reaches SQLite). */
static bool is_id(const char *s, size_t n)
{
    if (n != TG_SPOOL_ID_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0') {
            return false;
        }
    }
    return true;
}

static int serve(struct tg_req *req)
{
    const struct tg_route_match *m = req->match;
    struct tg_spool *sp = tg_spool_current();
    struct lookup *lk;

    if (m->n_params != 1 || !is_id(m->params[0].value, m->params[0].len)) {
        return tg_req_fail(req, TG_ENOTFOUND, "not a submission id");
    }
    if (sp == NULL) {
        return tg_req_fail(req, TG_ESPOOL, "no spool");
    }
    lk = calloc(1, sizeof(*lk));
    if (lk == NULL || tg_wait_init(&lk->wait, req, on_found, release) != TG_OK) {
        free(lk);
        return TG_ENOMEM;
    }
    lk->op.kind = TG_SPOOL_OP_GET;
    lk->op.done = on_looked_up;
    memcpy(lk->op.u.get.id, m->params[0].value, TG_SPOOL_ID_LEN);
    tg_wait_hold(&lk->wait); /* the reader's, until on_looked_up */
    tg_spool_submit(sp, &lk->op);
    return TG_MW_ASYNC;
}

/* The client left or the gateway drains: the lookup's result is dropped when it comes. */
static void cancel(struct tg_req *req, int err)
{
    (void)err;
    tg_wait_cancel(req);
}

static void cleanup(void *conf)
{
    struct tg_submission_conf *sc = conf;

    if (sc != NULL) {
        free(sc->route);
        free(sc);
    }
}

static int load(const struct tg_route_load *rl, void **out)
{
    char path[TG_JPATH_MAX];
    const char *name = NULL;
    struct tg_submission_conf *sc;
    int rc = tg_conf_get_str(rl->ctx, rl->obj, rl->jpath, "submissions", true, &name);

    if (rc != TG_OK) {
        return rc;
    }
    tg_jpos_path_key(path, sizeof(path), rl->jpath, "path");
    if (strcmp(rl->route->method, "GET") != 0) {
        return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "method"),
                             "a status route is a GET route");
    }
    size_t params = 0;
    for (size_t i = 0; i < rl->route->n_segs; i++) {
        params += rl->route->segs[i].kind == TG_SEG_PARAM;
    }
    if (params != 1 || rl->route->prefix) {
        return tg_conf_error(rl->ctx, path,
                             "a status route's path has exactly one parameter, the submission "
                             "id (\"/submissions/{id}\"), and no \"/*\"");
    }
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL || (sc->route = strdup(name)) == NULL) {
        cleanup(sc);
        return TG_ENOMEM;
    }
    *out = sc;
    return TG_OK;
}

/* The route it names must be a durable route of the same table. */
static int status_link(const struct tg_route_load *rl, void *conf, const struct tg_route_table *t)
{
    char path[TG_JPATH_MAX], quoted[96];
    const struct tg_submission_conf *sc = conf;

    if (tg_durable_of(t, sc->route, NULL) != NULL) {
        return TG_OK;
    }
    return tg_conf_error(rl->ctx, tg_jpos_path_key(path, sizeof(path), rl->jpath, "submissions"),
                         "no durable route named %s (\"submissions\" names the POST route with "
                         "the \"durable\" block whose submissions this route shows)",
                         tg_jpos_quote(quoted, sizeof(quoted), sc->route));
}

const struct tg_handler_ops tg_handler_submission = {
    .key = "submissions",
    .load = load,
    .cleanup = cleanup,
    .link = status_link,
    .serve = serve,
    .cancel = cancel,
};
