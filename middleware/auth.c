#include "middleware/auth.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/claims.h"
#include "auth/issuer.h"
#include "auth/principal.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/stats.h"

#define CHALLENGE         "Bearer realm=\"tracegate\""
#define CHALLENGE_INVALID CHALLENGE ", error=\"invalid_token\""

/* The token of "Authorization: Bearer <token>" (RFC 6750 2.1), or NULL; *many when the header
 * came more than once (refused: which one would the upstream read?). */
static const char *bearer(const struct tg_req *req, size_t *len, bool *many)
{
    size_t n = 0;
    const char *v = tg_req_header(req, "Authorization", &n);

    *many = tg_req_header_count(req, "Authorization") > 1;
    if (v == NULL || n < 7 || strncasecmp(v, "Bearer ", 7) != 0) {
        return NULL;
    }
    v += 7;
    n -= 7;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    *len = n;
    return n > 0 ? v : NULL;
}

/* The request's header list without the claim headers a client sent, without Authorization
 * when it must not pass, and with room for extra more. TG_OK or TG_ENOMEM. */
static int rebuild_headers(struct tg_req *req, const struct tg_auth_issuer *iss, size_t extra)
{
    const struct tg_auth *all = req->conf->auth;
    struct tg_kv *out = tg_req_alloc(req, NULL, (req->n_hdrs + extra + 1) * sizeof(*out), NULL);
    size_t n = 0;

    if (out == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (tg_auth_is_claim_header(all, kv->name, kv->name_len) ||
            (iss != NULL && !iss->forward_token &&
             tg_header_name_is(kv->name, kv->name_len, "Authorization"))) {
            continue;
        }
        out[n++] = *kv;
    }
    req->hdrs = out;
    req->n_hdrs = n;
    return TG_OK;
}

/* The issuer's chosen claims as request headers (room was made by rebuild_headers). */
static int add_claim_headers(struct tg_req *req, const struct tg_auth_issuer *iss,
                             const json_t *claims)
{
    for (size_t i = 0; i < iss->n_claim_hdrs; i++) {
        const struct tg_claim_header *ch = &iss->claim_hdrs[i];
        char num[32];
        const char *v = tg_claims_text(claims, ch->claim, num, sizeof(num));
        if (v == NULL) {
            continue;
        }
        if (v == num && (v = tg_req_strndup(req, num, strlen(num))) == NULL) {
            return TG_ENOMEM;
        }
        req->hdrs[req->n_hdrs++] = (struct tg_kv){ch->header, v, strlen(ch->header), strlen(v)};
    }
    return TG_OK;
}

/* 401 or 503 with the JSON error; the cause goes to the log only. */
static int refuse(struct tg_req *req, int err, const char *why, const char *challenge)
{
    tg_req_fail(req, err, NULL);
    req->end.detail = why;
    if (req->stats != NULL && err != TG_EOVERLOAD) {
        TG_STAT_ADD(req->stats, auth_denied, 1);
    }
    if (challenge != NULL) {
        tg_resp_add_header(&req->resp, "WWW-Authenticate", challenge);
    }
    if (err == TG_EOVERLOAD) {
        tg_resp_add_header(&req->resp, "Retry-After", "1");
    }
    return TG_MW_DONE;
}

static int auth_on_headers(struct tg_req *req)
{
    struct tg_auth_issuer *iss = req->policy->auth;
    const struct tg_auth *all = req->conf->auth;
    json_t *claims = NULL;
    const char *token;
    const char *why = NULL;
    size_t len = 0;
    bool many = false;
    int rc;

    if (all == NULL) {
        return TG_MW_NEXT;
    }
    /* Read before the list is rebuilt, which may drop Authorization (the value stays). The
     * list is copied only when something in it changes. */
    token = bearer(req, &len, &many);
    if ((all->claim_headers || (iss != NULL && !iss->forward_token)) &&
        rebuild_headers(req, iss, iss != NULL ? iss->n_claim_hdrs : 0) != TG_OK) {
        return TG_ENOMEM;
    }
    if (iss == NULL) {
        return TG_MW_NEXT;
    }
    if (token == NULL || many) {
        return refuse(req, TG_ENOTOKEN, many ? "repeated authorization" : "no bearer token",
                      many ? CHALLENGE_INVALID : CHALLENGE);
    }
    rc = tg_auth_verify(iss, token, len, (int64_t)time(NULL), &claims, &why);
    if (rc != TG_OK) {
        return refuse(req, rc, why, rc == TG_EOVERLOAD ? NULL : CHALLENGE_INVALID);
    }
    if (tg_principal_set(req, claims, iss->name) == NULL) {
        return TG_ENOMEM;
    }
    return add_claim_headers(req, iss, claims) == TG_OK ? TG_MW_NEXT : TG_ENOMEM;
}

const struct tg_mw_ops tg_mw_auth = {
    .name = "auth",
    .on_headers = auth_on_headers,
};
