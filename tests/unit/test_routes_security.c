/* Unit tests for the conf's security keys: "auth" issuers, the routes' "auth", "scopes",
 * "patient_param", "audit" and "rate_limit", "tls" versions and ciphers, "trusted_proxies".
 * Every mistake is an error with the file, line and column. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "auth/issuer.h"
#include "auth/jose.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "routes/table.h"
#include "tests/support/unit/tmpconf.h"

#define ISSUER                                                                             \
    "\"auth\": {\"issuers\": {\"idp\": {\"issuer\": \"https://idp\", \"jwks_url\": "       \
    "\"http://127.0.0.1:9/jwks\", \"audiences\": [\"epro\"], \"algorithms\": [\"RS256\", " \
    "\"ES256\"]}}},\n"
#define UPSTREAM "\"upstreams\": {\"a\": {\"url\": \"http://127.0.0.1:1\"}},\n"

static void teardown(void)
{
    tmpconf_remove();
}

TestSuite(route_security, .fini = teardown, .timeout = 10);

static int load(const char *text, struct tg_conf **conf, char *err, size_t cap)
{
    *conf = NULL;
    return tg_conf_load(tmpconf_write("security", text), tg_route_table_load, conf, err, cap);
}

/* text must fail with an error containing want (after the file name). */
static void expect_err(const char *text, const char *want)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf;

    cr_assert(eq(int, load(text, &conf, err, sizeof(err)), TG_EINVAL), "loaded: %s", text);
    cr_assert(not(zero(ptr, strstr(err, want))), "got %s, want %s", err, want);
    cr_assert(eq(int, strncmp(err, tmpconf_path(), strlen(tmpconf_path())), 0), "%s", err);
}

Test(route_security, a_route_with_auth_scopes_and_limits_loads)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf;
    const struct tg_route *r;
    const char *text =
        "{" UPSTREAM ISSUER "\"routes\": [{\"method\": \"GET\", \"path\": "
        "\"/patients/{patient}/obs\", \"upstream\": \"a\", \"auth\": \"idp\", \"scopes\": "
        "[\"patient/Observation.rs\"], \"rate_limit\": {\"per_second\": 5, \"burst\": 10}}]}";

    cr_assert(eq(int, load(text, &conf, err, sizeof(err)), TG_OK), "%s", err);
    r = tg_route_table_at(conf->routes, 0);
    cr_assert(not(zero(ptr, r->policy.auth)));
    cr_assert(eq(u32, r->policy.auth->algs, TG_JWS_RS256 | TG_JWS_ES256));
    cr_assert(eq(u32, r->policy.auth->rule.skew_s, 60));
    cr_assert(eq(sz, r->policy.n_scopes, 1));
    cr_assert(eq(str, (char *)r->policy.patient_param, "patient"));
    cr_assert(not(zero(ptr, r->policy.rate_limit)));
    cr_assert(not(r->policy.rate_by_client), "by subject on routes with auth");
    cr_assert(not(tg_auth_is_ready(conf->auth)), "a jwks_url issuer waits for its first set");
    tg_conf_unref(conf);
}

Test(route_security, unknown_issuer)
{
    expect_err("{" UPSTREAM ISSUER "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", "
               "\"upstream\": \"a\", \"auth\": \"nope\"}]}",
               ":3:69: unknown issuer \"nope\"");
}

Test(route_security, scopes_need_auth_and_a_patient_parameter)
{
    expect_err("{" UPSTREAM ISSUER "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", "
               "\"upstream\": \"a\", \"scopes\": [\"user/*.rs\"]}]}",
               "scopes need \"auth\" on the route");
    expect_err("{" UPSTREAM ISSUER "\"routes\": [{\"method\": \"GET\", \"path\": \"/x/{id}\", "
               "\"upstream\": \"a\", \"auth\": \"idp\", \"scopes\": [\"patient/*.rs\"]}]}",
               "the path has no parameter {patient}");
    expect_err("{" UPSTREAM ISSUER "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", "
               "\"upstream\": \"a\", \"auth\": \"idp\", \"scopes\": [\"patient/obs.rs\"]}]}",
               "bad SMART scope \"patient/obs.rs\"");
}

Test(route_security, issuer_mistakes)
{
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"algorithms\": "
               "[\"none\"], \"jwks_url\": \"http://h/\"}}}}",
               "unknown or refused algorithm \"none\"");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"algorithms\": "
               "[\"HS256\"]}}}}",
               "HS algorithms need a local secret_file");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\"}}}}",
               "RS, PS and ES algorithms need jwks_file or jwks_url");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"jwks_url\": "
               "\"ftp://h/\"}}}}",
               "jwks_url must be an http:// or https:// URL");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"jwks_file\": "
               "\"/nonexistent/jwks.json\"}}}}",
               "jwks_file");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"jwks_url\": \"http://h/\", "
               "\"clock_skew_s\": 301}}}}",
               "clock_skew_s");
    expect_err("{\"auth\": {\"issuers\": {\"i\": {\"issuer\": \"x\", \"jwks_url\": \"http://h/\", "
               "\"claims_to_headers\": {\"sub\": \"Authorization\"}}}}}",
               "Authorization cannot carry a claim");
}

Test(route_security, rate_limit_and_audit_mistakes)
{
    expect_err("{" UPSTREAM "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", \"upstream\": "
               "\"a\", \"rate_limit\": {\"per_second\": 5, \"by\": \"subject\"}}]}",
               "rate limits by subject need \"auth\"");
    expect_err("{" UPSTREAM "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", \"upstream\": "
               "\"a\", \"rate_limit\": {\"burst\": 5}}]}",
               "per_second is required");
    expect_err("{" UPSTREAM "\"routes\": [{\"method\": \"GET\", \"path\": \"/x\", \"upstream\": "
               "\"a\", \"audit\": true}]}",
               "audited routes need the conf's audit.file");
}

Test(route_security, tls_and_trusted_proxy_mistakes)
{
    expect_err("{\"tls\": {\"cert\": \"c\", \"key\": \"k\", \"min_version\": \"1.1\"}}",
               "expected \"1.2\" or \"1.3\", got \"1.1\"");
    expect_err("{\"tls\": {\"cert\": \"c\", \"key\": \"k\", \"priorities\": \"NORMAL:+BOGUS\"}}",
               "GnuTLS refuses the priority string");
    expect_err("{\"trusted_proxies\": [\"10.1.0.0/8\"]}", "bad address range \"10.1.0.0/8\"");
}

Test(route_security, tls_priorities_remove_old_versions)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf;

    cr_assert(eq(int, load("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}}", &conf, err, sizeof(err)),
                 TG_OK),
              "%s", err);
    cr_assert(eq(str, conf->tls_priorities, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"));
    tg_conf_unref(conf);
}
