/* Bearer tokens on routes with "auth": keys the test makes, a JWKS served by tg-stub from a
 * file the test rewrites, tokens signed here; what the client gets (401/403 with
 * WWW-Authenticate and the JSON error) and what the upstream gets (claims as headers, the
 * client's copies gone). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/jwt.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define ISS    "https://idp.test/realms/epro"
#define AUD    "epro-api"
#define SECRET "0123456789abcdef0123456789abcdef-local"

static struct fixture fx;
static char dir[128];
static char jwks_path[256];
static struct jwt_key *rsa;
static struct jwt_key *ec;

static void write_secret(const char *path)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    fputs(SECRET, f);
    fclose(f);
}

/* Polls /readyz until it answers want, for up to ms. */
static bool wait_ready(long want, int ms)
{
    for (int waited = 0; waited < ms; waited += 100) {
        struct http_resp r;
        http_do(fx.gw.ports[0], "GET", "/readyz", NULL, NULL, 0, 2000, &r);
        long status = r.status;
        http_resp_free(&r);
        if (status == want) {
            return true;
        }
        usleep(100000);
    }
    return false;
}

static void start(bool with_jwks)
{
    const char *specs[] = {"0:test"};
    char secret[256];
    const struct conf_var vars[] = {{"JWKS_FILE", jwks_path}, {"SECRET_FILE", secret}};
    struct jwt_key *keys[2];

    snprintf(dir, sizeof(dir), "/tmp/tg-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
    snprintf(secret, sizeof(secret), "%s/hs.key", dir);
    write_secret(secret);
    rsa = jwt_key_rsa("k1");
    ec = jwt_key_ec("e1");
    keys[0] = rsa;
    keys[1] = ec;
    if (with_jwks) {
        jwt_jwks_write(jwks_path, keys, 2);
    }
    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "auth.json", vars, 2);
}

static void setup(void)
{
    start(true);
    cr_assert(wait_ready(200, 10000), "never ready, log %s", fx.gw.log_path);
}

static void teardown(void)
{
    char cmd[256];

    fixture_stop(&fx);
    jwt_key_free(rsa);
    jwt_key_free(ec);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 90);

/* A token signed by k with alg over claims (then freed). */
static char *sign_claims(const struct jwt_key *k, const char *alg, char *claims)
{
    char *tok = jwt_sign(k, alg, claims);

    free(claims);
    return tok;
}

/* GET target with "Authorization: Bearer token" (none when token is NULL) and one more header
 * line (may be NULL). */
static void get(const char *target, const char *token, const char *more, struct http_resp *r)
{
    char authz[20000];
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t n = 0;

    if (token != NULL) {
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token);
        hdrs[n++] = authz;
    }
    if (more != NULL) {
        hdrs[n++] = more;
    }
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, hdrs, NULL, 0, 5000, r), 0, "%s", target);
}

/* The status of GET target with a token signed by k over claims (then freed). */
static long status_with(const struct jwt_key *k, const char *alg, char *claims, const char *target)
{
    char *tok = jwt_sign(k, alg, claims);
    struct http_resp r;
    long status;

    get(target, tok, NULL, &r);
    status = r.status;
    http_resp_free(&r);
    free(tok);
    free(claims);
    return status;
}

/* A 401 or 403 as the gateway makes it: the challenge, the JSON error with the trace id of the
 * answer's trace header, and nothing about why. */
static void expect_refusal(const struct http_resp *r, long status, const char *challenge)
{
    char buf[256];
    char trace[256];
    json_t *j = json_loads(r->body, 0, NULL);

    cr_expect_eq(r->status, status, "%ld: %s", r->status, r->body);
    cr_assert_not_null(http_header(r, "WWW-Authenticate", buf, sizeof(buf)), "%s", r->headers);
    cr_expect_str_eq(buf, challenge);
    cr_assert_not_null(j, "%s", r->body);
    cr_assert_not_null(http_header(r, "X-Trace-Id", trace, sizeof(trace)));
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), trace);
    cr_expect_eq(json_object_size(j), 2, "only error and trace_id: %s", r->body);
    json_decref(j);
}

/* The last request the stub got, key set fetches aside, or NULL (caller decrefs). */
static json_t *last_upstream_request(void)
{
    return stub_last_request(fx.record, "jwks");
}

/* Requests for the key set the stub got. */
static size_t jwks_fetches(void)
{
    json_t *all = stub_records(fx.record);
    size_t i;
    size_t n = 0;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "target"));
        n += strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 && t != NULL &&
             strncmp(t, "/jwks", 5) == 0;
    }
    json_decref(all);
    return n;
}

#define CHALLENGE         "Bearer realm=\"tracegate\""
#define CHALLENGE_INVALID CHALLENGE ", error=\"invalid_token\""
#define CHALLENGE_SCOPE   CHALLENGE ", error=\"insufficient_scope\""

Test(auth, valid_token_passes_with_claims_as_headers_and_client_copies_removed)
{
    char *tok = sign_claims(rsa, "RS256", jwt_claims(ISS, AUD, 300, "{\"sub\":\"alice\"}"));
    struct http_resp r;
    json_t *rec;

    get("/api/records", tok, "X-Auth-Subject: mallory", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    rec = last_upstream_request();
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "X-Auth-Subject"), "alice");
    cr_expect_not_null(record_header(rec, "Authorization"), "the token is forwarded by default");
    json_decref(rec);
    http_resp_free(&r);
    free(tok);
}

/* A request at the header cap still has room for the claim headers on their way upstream
 * (under ASan, a forward list sized for client headers alone overflowed here). */
Test(auth, claim_headers_fit_beside_a_full_set_of_client_headers)
{
    char *tok = sign_claims(rsa, "RS256",
                            jwt_claims(ISS, AUD, 300, "{\"sub\":\"alice\",\"patient\":\"p1\"}"));
    static char extra[97][32];
    const char *hdrs[100];
    char authz[20000];
    struct http_resp r;
    json_t *rec;
    size_t n = 0;

    /* curl adds Host and Accept: 100 fields in all, the most the gateway takes (the conf's
     * connection buffer is large enough for such a head) */
    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", tok);
    hdrs[n++] = authz;
    for (int i = 0; i < 97; i++) {
        snprintf(extra[i], sizeof(extra[i]), "X-Extra-%d: %d", i, i);
        hdrs[n++] = extra[i];
    }
    hdrs[n] = NULL;
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/api/records", hdrs, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    rec = last_upstream_request();
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "X-Auth-Subject"), "alice");
    cr_expect_str_eq(record_header(rec, "X-Auth-Patient"), "p1");
    cr_expect_str_eq(record_header(rec, "X-Extra-96"), "96");
    json_decref(rec);
    http_resp_free(&r);
    free(tok);
}

Test(auth, client_claim_headers_are_removed_on_routes_without_auth)
{
    struct http_resp r;
    json_t *rec;

    get("/open/x", NULL, "X-Auth-Patient: p-999", &r);
    cr_expect_eq(r.status, 200);
    rec = last_upstream_request();
    cr_assert_not_null(rec);
    cr_expect_null(record_header(rec, "X-Auth-Patient"));
    json_decref(rec);
    http_resp_free(&r);
}

Test(auth, missing_token_is_401_with_a_bare_challenge)
{
    struct http_resp r;

    get("/api/records", NULL, NULL, &r);
    expect_refusal(&r, 401, CHALLENGE);
    cr_expect_null(last_upstream_request());
    http_resp_free(&r);
}

Test(auth, token_in_the_query_string_is_not_read)
{
    char *tok = sign_claims(rsa, "RS256", jwt_claims(ISS, AUD, 300, NULL));
    char target[4096];
    struct http_resp r;

    snprintf(target, sizeof(target), "/api/records?access_token=%s", tok);
    get(target, NULL, NULL, &r);
    expect_refusal(&r, 401, CHALLENGE);
    http_resp_free(&r);
    free(tok);
}

Test(auth, bad_tokens_are_401_invalid_token)
{
    const char *why[] = {"expired", "nbf ahead", "wrong iss", "wrong aud", "no exp", "garbage"};
    char *bad[6];
    char *c;

    bad[0] = jwt_sign(rsa, "RS256", c = jwt_claims(ISS, AUD, -120, NULL));
    free(c);
    bad[1] = jwt_sign(rsa, "RS256", c = jwt_claims(ISS, AUD, 300, "{\"nbf\":99999999999}"));
    free(c);
    bad[2] = jwt_sign(rsa, "RS256", c = jwt_claims("https://evil.test", AUD, 300, NULL));
    free(c);
    bad[3] = jwt_sign(rsa, "RS256", c = jwt_claims(ISS, "someone-else", 300, NULL));
    free(c);
    bad[4] = jwt_sign(rsa, "RS256", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}");
    bad[5] = strdup("eyJhbGciOiJSUzI1NiJ9.not-base64!.x");
    for (size_t i = 0; i < 6; i++) {
        struct http_resp r;
        get("/api/records", bad[i], NULL, &r);
        cr_expect_eq(r.status, 401, "%s: %ld", why[i], r.status);
        expect_refusal(&r, 401, CHALLENGE_INVALID);
        cr_expect_null(strstr(r.body, why[i]), "no verifier detail: %s", r.body);
        http_resp_free(&r);
        free(bad[i]);
    }
    cr_expect_null(last_upstream_request());
}

Test(auth, expiry_within_the_default_60s_skew_passes)
{
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, AUD, -30, NULL), "/api/x"), 200);
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, AUD, -90, NULL), "/api/x"), 401);
}

Test(auth, audience_any_of_a_list_and_in_an_array)
{
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, "other-api", 300, NULL), "/api/x"), 200);
    cr_expect_eq(status_with(rsa, "RS256",
                             jwt_claims(ISS, NULL, 300, "{\"aud\":[\"nope\",\"epro-api\"]}"),
                             "/api/x"),
                 200);
}

Test(auth, es256_from_the_same_key_set_passes)
{
    cr_expect_eq(status_with(ec, "ES256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 200);
}

Test(auth, alg_none_is_refused)
{
    char *c = jwt_claims(ISS, AUD, 300, NULL);
    char *tok = jwt_unsigned(c);
    struct http_resp r;

    get("/api/records", tok, NULL, &r);
    expect_refusal(&r, 401, CHALLENGE_INVALID);
    http_resp_free(&r);
    free(tok);
    free(c);
}

/* The classic confusion: HS256 "signed" with the issuer's public key as the HMAC secret. */
Test(auth, hmac_over_the_public_key_is_refused)
{
    char *c = jwt_claims(ISS, AUD, 300, NULL);
    char *pub = jwt_public_text(rsa);
    char *tok = jwt_sign_hmac(pub, strlen(pub), "HS256", "k1", c);
    struct http_resp r;

    get("/api/records", tok, NULL, &r);
    expect_refusal(&r, 401, CHALLENGE_INVALID);
    http_resp_free(&r);
    free(tok);
    free(pub);
    free(c);
}

Test(auth, pinned_algorithm_rs384_is_refused_though_the_key_fits)
{
    cr_expect_eq(status_with(rsa, "RS384", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 401);
}

Test(auth, hs256_with_the_local_secret_passes_and_the_token_stays_here)
{
    char *c = jwt_claims("https://local.test", NULL, 300, "{\"sub\":\"svc\"}");
    char *good = jwt_sign_hmac(SECRET, strlen(SECRET), "HS256", NULL, c);
    char *bad = jwt_sign_hmac("another-secret-another-secret-xx", 32, "HS256", NULL, c);
    struct http_resp r;
    json_t *rec;

    get("/hs/x", good, NULL, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
    rec = last_upstream_request();
    cr_assert_not_null(rec);
    cr_expect_null(record_header(rec, "Authorization"), "forward_token false");
    json_decref(rec);
    get("/hs/x", bad, NULL, &r);
    cr_expect_eq(r.status, 401);
    http_resp_free(&r);
    free(good);
    free(bad);
    free(c);
    /* An RS256 token is no token for an HS-only issuer. */
    cr_expect_eq(
        status_with(rsa, "RS256", jwt_claims("https://local.test", NULL, 300, NULL), "/hs/x"), 401);
}

/* ---- SMART scopes and patient context -------------------------------------------------- */

static long obs(const char *patient, const char *extra)
{
    char target[128];

    snprintf(target, sizeof(target), "/patients/%s/observations", patient);
    return status_with(rsa, "RS256", jwt_claims(ISS, AUD, 300, extra), target);
}

Test(auth, patient_scope_binds_the_request_to_the_tokens_patient)
{
    const char *p1 = "{\"scope\":\"openid patient/Observation.rs\",\"patient\":\"p1\"}";

    cr_expect_eq(obs("p1", p1), 200);
    cr_expect_eq(obs("p2", p1), 403);
    cr_expect_eq(obs("p1", "{\"scope\":\"patient/Observation.rs\"}"), 403, "no patient claim");
}

Test(auth, v1_and_wildcard_scopes_grant_read)
{
    cr_expect_eq(obs("p1", "{\"scope\":\"patient/Observation.read\",\"patient\":\"p1\"}"), 200);
    cr_expect_eq(obs("p1", "{\"scope\":\"patient/*.rs\",\"patient\":\"p1\"}"), 200);
    cr_expect_eq(obs("p7", "{\"scp\":[\"user/Observation.cruds\"]}"), 200, "user: any patient");
}

Test(auth, missing_or_narrower_scopes_are_403_insufficient_scope)
{
    char *tok = sign_claims(
        rsa, "RS256",
        jwt_claims(ISS, AUD, 300, "{\"scope\":\"patient/Condition.rs\",\"patient\":\"p1\"}"));
    struct http_resp r;

    get("/patients/p1/observations", tok, NULL, &r);
    expect_refusal(&r, 403, CHALLENGE_SCOPE);
    http_resp_free(&r);
    free(tok);
    cr_expect_eq(obs("p1", "{\"scope\":\"patient/Observation.r\",\"patient\":\"p1\"}"), 403);
    cr_expect_eq(obs("p1", "{\"scope\":\"patient/Observation.rs?category=vital-signs\","
                           "\"patient\":\"p1\"}"),
                 403);
    cr_expect_eq(obs("p1", "{\"scope\":\"system/Observation.rs\"}"), 403);
}

/* ---- key rotation ------------------------------------------------------------------------ */

Test(auth, rotated_key_is_fetched_once_per_30s_on_an_unknown_kid)
{
    struct jwt_key *k2 = jwt_key_rsa("k2");
    struct jwt_key *k3 = jwt_key_rsa("k3");
    struct jwt_key *keys[] = {rsa, k2};
    size_t before = jwks_fetches();
    long status = 0;

    jwt_jwks_write(jwks_path, keys, 2); /* the IdP rotates: k2 appears */
    for (int i = 0; i < 50 && status != 200; i++) {
        status = status_with(k2, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x");
        if (status != 200) {
            usleep(100000);
        }
    }
    cr_expect_eq(status, 200, "k2 never accepted, log %s", fx.gw.log_path);
    cr_expect_eq(jwks_fetches(), before + 1);
    /* Junk kids now: no new fetch within 30 s, whatever their number. */
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(status_with(k3, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 401);
    }
    usleep(300000);
    cr_expect_eq(jwks_fetches(), before + 1, "refetched within 30 s");
    jwt_key_free(k2);
    jwt_key_free(k3);
}

Test(auth, last_good_key_set_is_kept_when_a_refresh_fails)
{
    struct jwt_key *k9 = jwt_key_rsa("k9");
    const char *failed[] = {"\"event\":\"auth.jwks_failed\"", NULL};

    unlink(jwks_path); /* the stub now answers 400 for the key set */
    cr_expect_eq(status_with(k9, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 401);
    cr_expect_eq(proc_log_wait(&fx.gw, failed, 1, 5000), 1, "log %s", fx.gw.log_path);
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 200);
    jwt_key_free(k9);
}

/* ---- readiness --------------------------------------------------------------------------- */

static void setup_without_keys(void)
{
    start(false);
}

TestSuite(auth_ready, .init = setup_without_keys, .fini = teardown, .timeout = 90);

Test(auth_ready, readyz_waits_for_the_first_key_set)
{
    struct jwt_key *keys[] = {rsa};
    struct http_resp r;

    get("/readyz", NULL, NULL, &r);
    cr_expect_eq(r.status, 503, "%s", r.body);
    http_resp_free(&r);
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 503);
    jwt_jwks_write(jwks_path, keys, 1);
    cr_expect(wait_ready(200, 15000), "not ready after the key set appeared, log %s",
              fx.gw.log_path);
    cr_expect_eq(status_with(rsa, "RS256", jwt_claims(ISS, AUD, 300, NULL), "/api/x"), 200);
}
