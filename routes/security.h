#ifndef TG_ROUTES_SECURITY_H
#define TG_ROUTES_SECURITY_H

/* The security keys every route may have ("auth", "scopes", "patient_param", "audit",
 * "rate_limit"), loaded into the route's policy for the middlewares that read them. */

#include <jansson.h>

struct tg_conf;
struct tg_conf_ctx;
struct tg_policy;
struct tg_route;

/* The route's security keys, NULL-terminated, for the table's list of common keys. */
extern const char *const tg_route_security_keys[];

/* Parses the security keys of route object v at jpath into r->policy: "auth" names an issuer
 * of conf's "auth" section; "scopes" (needs auth) lists SMART scopes, any of which the token
 * must grant; a patient/ scope needs the patient parameter ("patient_param", default
 * "patient") in the path; "rate_limit" sets per-client buckets. TG_OK, TG_EINVAL with ctx's
 * error set, TG_ENOMEM. */
int tg_route_load_security(struct tg_conf_ctx *ctx, const char *jpath, const json_t *v,
                           const struct tg_conf *conf, struct tg_route *r);

/* Frees what tg_route_load_security put in p. */
void tg_route_security_cleanup(struct tg_policy *p);

#endif
