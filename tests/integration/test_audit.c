/* The audit trail: one BALP AuditEvent per request on audited routes, in the audit file, with
 * the final status (401 and 499 included), and never a token, a body or a query string in it
 * or in the gateway's log. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/jwt.h"
#include "tests/support/proc.h"
#include "tests/support/read_file.h"

#define ISS "https://idp.test"

static struct fixture fx;
static char dir[128];
static char audit_path[256];
static struct jwt_key *signer;

static void setup(void)
{
    const char *specs[] = {"0:test"};
    char jwks[256];
    const struct conf_var vars[] = {{"AUDIT_FILE", audit_path}, {"JWKS_FILE", jwks}};

    snprintf(dir, sizeof(dir), "/tmp/tg-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(audit_path, sizeof(audit_path), "%s/audit.jsonl", dir);
    snprintf(jwks, sizeof(jwks), "%s/jwks.json", dir);
    signer = jwt_key_ec("a1");
    jwt_jwks_write(jwks, &signer, 1);
    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "audit.json", vars, 2);
}

static void teardown(void)
{
    char cmd[256];

    fixture_stop(&fx);
    jwt_key_free(signer);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(audit, .init = setup, .fini = teardown, .timeout = 60);

/* The audit records so far, waiting up to 3 s for at least want of them (caller decrefs). */
static json_t *records(size_t want)
{
    json_t *all = json_array();

    for (int i = 0; i < 60; i++) {
        char *text = read_file(audit_path);
        json_array_clear(all);
        for (char *line = text, *nl; line != NULL && *line != '\0'; line = nl + 1) {
            nl = strchr(line, '\n');
            if (nl == NULL) {
                break;
            }
            *nl = '\0';
            json_t *rec = json_loads(line, 0, NULL);
            cr_assert_not_null(rec, "not JSON: %s", line);
            json_array_append_new(all, rec);
        }
        free(text);
        if (json_array_size(all) >= want) {
            break;
        }
        usleep(50000);
    }
    return all;
}

static char *token(const char *extra)
{
    char *c = jwt_claims(ISS, NULL, 300, extra);
    char *t = jwt_sign(signer, "ES256", c);

    free(c);
    return t;
}

static void request(const char *method, const char *target, const char *tok, const char *body,
                    long timeout_ms, struct http_resp *r)
{
    char authz[4096];
    const char *hdrs[] = {authz, NULL};

    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", tok != NULL ? tok : "");
    http_do(fx.gw.ports[0], method, target, tok != NULL ? hdrs : NULL, body,
            body != NULL ? strlen(body) : 0, timeout_ms, r);
}

/* The string at a dotted path ("agent.0.who.identifier.value": digits index arrays). */
static const char *path_str(json_t *o, const char *path)
{
    char key[64];

    while (o != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        if (json_is_array(o)) {
            o = json_array_get(o, strtoul(key, NULL, 10));
        } else {
            o = json_object_get(o, key);
        }
        path += n + (path[n] == '.');
    }
    return json_string_value(o);
}

Test(audit, an_authorized_read_is_one_balp_record)
{
    char *tok = token("{\"sub\":\"alice\",\"client_id\":\"epro-app\",\"jti\":\"tok-1\"}");
    char trace[256];
    struct http_resp r;
    json_t *all;
    json_t *rec;

    request("GET", "/patients/p1/record", tok, NULL, 5000, &r);
    cr_expect_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", trace, sizeof(trace)));
    all = records(1);
    cr_assert_eq(json_array_size(all), 1);
    rec = json_array_get(all, 0);
    cr_expect_str_eq(path_str(rec, "resourceType"), "AuditEvent");
    cr_expect_str_eq(path_str(rec, "type.code"), "rest");
    cr_expect_str_eq(path_str(rec, "subtype.0.code"), "read");
    cr_expect_str_eq(path_str(rec, "action"), "R");
    cr_expect_str_eq(path_str(rec, "outcome"), "0");
    cr_expect_str_eq(path_str(rec, "outcomeDesc"), "200");
    cr_expect_str_eq(path_str(rec, "agent.0.who.identifier.value"), "epro-app");
    cr_expect_str_eq(path_str(rec, "agent.0.network.address"), "127.0.0.1");
    cr_expect_str_eq(path_str(rec, "agent.1.who.identifier.value"), "alice");
    cr_expect_str_eq(path_str(rec, "agent.1.who.identifier.system"), ISS);
    cr_expect_str_eq(path_str(rec, "agent.1.policy.0"), "tok-1");
    cr_expect_str_eq(path_str(rec, "entity.0.what.reference"), "Patient/p1");
    cr_expect_str_eq(path_str(rec, "entity.1.what.display"), "GET /patients/{patient}/record");
    cr_expect_str_eq(path_str(rec, "entity.2.what.identifier.value"), trace);
    cr_expect_str_eq(path_str(rec, "entity.2.type.code"), "XrequestId");
    cr_expect_not_null(path_str(rec, "recorded"));
    json_decref(all);
    http_resp_free(&r);
    free(tok);
}

Test(audit, a_denied_request_is_recorded_as_a_failure)
{
    struct http_resp r;
    json_t *all;

    request("GET", "/patients/p2/record", NULL, NULL, 5000, &r);
    cr_expect_eq(r.status, 401);
    all = records(1);
    cr_assert_eq(json_array_size(all), 1);
    cr_expect_str_eq(path_str(json_array_get(all, 0), "outcome"), "4");
    cr_expect_str_eq(path_str(json_array_get(all, 0), "outcomeDesc"), "401 invalid token");
    cr_expect_eq(json_array_size(json_object_get(json_array_get(all, 0), "agent")), 1,
                 "no user without a token");
    json_decref(all);
    http_resp_free(&r);
}

Test(audit, a_client_that_leaves_is_recorded_as_499)
{
    struct http_resp r;
    json_t *all;

    request("GET", "/patients/p3/slow?delay_ms=3000", NULL, NULL, 300, &r); /* leaves at 300 ms */
    all = records(1);
    cr_assert_eq(json_array_size(all), 1, "log %s", fx.gw.log_path);
    cr_expect_str_eq(path_str(json_array_get(all, 0), "outcomeDesc"), "499 client closed request");
    cr_expect_str_eq(path_str(json_array_get(all, 0), "outcome"), "4");
    json_decref(all);
    http_resp_free(&r);
}

Test(audit, unaudited_routes_write_nothing)
{
    struct http_resp r;
    json_t *all;

    request("GET", "/unaudited/p4", NULL, NULL, 5000, &r);
    cr_expect_eq(r.status, 200);
    usleep(300000);
    all = records(0);
    cr_expect_eq(json_array_size(all), 0);
    json_decref(all);
    http_resp_free(&r);
}

/* Neither log holds the token, the body or the query string, whatever the outcome. */
Test(audit, no_token_body_or_query_reaches_either_log)
{
    char *tok = token("{\"sub\":\"bob\"}");
    const char *body = "{\"answer\":\"PHI-BODY-7f3a\"}";
    const char *line[] = {"\"event\":\"request.done\"", "/patients/p5/forms", NULL};
    struct http_resp r;
    char *gw_log;
    char *audit_log;
    json_t *all;

    request("POST", "/patients/p5/forms?name=Jane%20Doe-QUERY", tok, body, 5000, &r);
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
    request("POST", "/patients/p5/forms?dob=1970-QUERY", "not.a.token-SECRET", body, 5000, &r);
    cr_expect_eq(r.status, 401);
    http_resp_free(&r);
    all = records(2);
    cr_expect_eq(json_array_size(all), 2);
    json_decref(all);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 2, 3000), 2);
    gw_log = proc_log(&fx.gw);
    audit_log = read_file(audit_path);
    cr_assert_not_null(gw_log);
    cr_assert_not_null(audit_log);
    const char *logs[] = {gw_log, audit_log};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_null(strstr(logs[i], tok), "token in log %zu", i);
        cr_expect_null(strstr(logs[i], "SECRET"), "token in log %zu", i);
        cr_expect_null(strstr(logs[i], "PHI-BODY"), "body in log %zu", i);
        cr_expect_null(strstr(logs[i], "QUERY"), "query in log %zu", i);
        cr_expect_null(strstr(logs[i], "Jane"), "query in log %zu", i);
    }
    free(gw_log);
    free(audit_log);
    free(tok);
}

/* ---- a reload cannot turn auditing on --------------------------------------------------- */

static void setup_off(void)
{
    const char *specs[] = {"0:test"};

    snprintf(dir, sizeof(dir), "/tmp/tg-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(audit_path, sizeof(audit_path), "%s/audit.jsonl", dir);
    signer = jwt_key_ec("a1");
    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "audit_off.json", NULL, 0);
}

TestSuite(audit_reload, .init = setup_off, .fini = teardown, .timeout = 60);

/* The audit file is opened at start: a reload asking for audited routes without it would
 * serve them unaudited, so it is refused and the running conf stays. */
Test(audit_reload, a_reload_that_turns_auditing_on_is_refused)
{
    char jwks[256];
    char port[16];
    const struct conf_var vars[] = {
        {"AUDIT_FILE", audit_path}, {"JWKS_FILE", jwks}, {"STUB_PORT_0", port}};
    const char *refused[] = {"\"event\":\"conf.reload_failed\"", NULL};
    struct http_resp r;

    snprintf(jwks, sizeof(jwks), "%s/jwks.json", dir);
    snprintf(port, sizeof(port), "%d", fx.stub.ports[0]);
    jwt_jwks_write(jwks, &signer, 1);
    conf_template_rewrite(fx.conf_path, "audit.json", vars, 3);
    proc_signal(&fx.gw, SIGHUP);
    cr_expect_eq(proc_log_wait(&fx.gw, refused, 1, 5000), 1, "log %s", fx.gw.log_path);
    request("GET", "/patients/p1/record", NULL, NULL, 5000, &r);
    cr_expect_eq(r.status, 200, "the running conf (no auth) still serves");
    http_resp_free(&r);
}
