#include "middleware/scopes.h"

#include <string.h>

#include "auth/claims.h"
#include "auth/issuer.h"
#include "auth/principal.h"
#include "auth/scope.h"
#include "gateway/err.h"
#include "gateway/stats.h"

#define CHALLENGE "Bearer realm=\"tracegate\", error=\"insufficient_scope\""

static int forbid(struct tg_req *req, const char *why)
{
    tg_req_fail(req, TG_EFORBIDDEN, NULL);
    req->end.detail = why;
    if (req->stats != NULL) {
        TG_STAT_ADD(req->stats, forbidden, 1);
    }
    tg_resp_add_header(&req->resp, "WWW-Authenticate", CHALLENGE);
    return TG_MW_DONE;
}

/* The token's patient equals the route's patient parameter, byte for byte: FHIR ids
 * ([A-Za-z0-9.-]) need no percent-encoding, and an encoded one is another id. */
static bool same_patient(const struct tg_req *req, const struct tg_principal *pr)
{
    char num[32];
    const char *claim =
        tg_claims_text(pr->claims, req->policy->auth->patient_claim, num, sizeof(num));

    return claim != NULL && req->patient != NULL && strlen(claim) == req->patient_len &&
           memcmp(claim, req->patient, req->patient_len) == 0;
}

static int scopes_on_headers(struct tg_req *req)
{
    const struct tg_principal *pr = tg_principal_get(req);
    struct tg_scope grant;

    if (req->policy->n_scopes == 0) {
        return TG_MW_NEXT;
    }
    if (pr == NULL) {
        return forbid(req, "no principal"); /* cannot happen: scopes need auth */
    }
    if (!tg_scope_find_grant(pr->claims, req->policy->scopes, req->policy->n_scopes, &grant)) {
        return forbid(req, "no granting scope");
    }
    if (grant.ctx == TG_SCOPE_PATIENT && !same_patient(req, pr)) {
        return forbid(req, "patient context mismatch");
    }
    return TG_MW_NEXT;
}

const struct tg_mw_ops tg_mw_scopes = {
    .name = "scopes",
    .on_headers = scopes_on_headers,
};
