/* The verified principal of a request, in request memory. */
#include "auth/principal.h"

#include "auth/claims.h"
#include "gateway/req.h"

static const char principal_key; /* its address tags the allocation */

static void principal_dispose(void *p)
{
    struct tg_principal *pr = p;

    json_decref(pr->claims);
    pr->claims = NULL;
}

/* A string claim fit for a log or an audit record, or NULL. */
static const char *text(const json_t *claims, const char *name)
{
    char unused[1];
    const json_t *v = json_object_get(claims, name);

    return json_is_string(v) ? tg_claims_text(claims, name, unused, sizeof(unused)) : NULL;
}

struct tg_principal *tg_principal_set(struct tg_req *req, json_t *claims, const char *issuer)
{
    struct tg_principal *pr = tg_req_alloc(req, &principal_key, sizeof(*pr), principal_dispose);

    if (pr == NULL) {
        json_decref(claims);
        return NULL;
    }
    pr->claims = claims;
    pr->issuer = issuer;
    pr->sub = text(claims, "sub");
    pr->client_id = text(claims, "client_id");
    if (pr->client_id == NULL) {
        pr->client_id = text(claims, "azp");
    }
    pr->jti = text(claims, "jti");
    return pr;
}

const struct tg_principal *tg_principal_get(const struct tg_req *req)
{
    return tg_req_get(req, &principal_key);
}
