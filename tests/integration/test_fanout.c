/* Fan-out routes through the real binary against the real stub upstream: concurrency, the
 * merged object, required and optional failures, cancellation of siblings and of every branch
 * when the client leaves, size caps on both sides, and what a backend receives. Backend paths
 * script the stub with their query string (delay_ms=, status=, body=, hang=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct fixture fx;

/* The stub answers the /m?body=... backends of conf/fanout.json with {"k":"xxxxxxxxxx"}: 18
 * bytes (/cap-fits allows 18, /cap-over 17); merged under the name "a" it is 24 bytes
 * (/merged-fits allows 24, /merged-over 23). */
#define SMALL_MERGED 24

/* Nested JSON with non-ASCII text and numbers a re-encoder would rewrite, as sent. The /rich
 * backend's path carries it percent-encoded: ${RICH_JSON_PCT} in conf/fanout.json. */
#define RICH_JSON                                                                                \
    "{\"name\":\"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\",\"dose\":0.1,\"n\":1e2," \
    "\"deep\":{\"a\":[1,{\"b\":[null,true,\"\\u00e9\"]}]},\"big\":12345678901234567890}"

/* Percent-encodes s for a query value (every byte outside [A-Za-z0-9]). */
static void pct(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) {
            out[n++] = (char)*p;
        } else {
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
        }
    }
    out[n] = '\0';
}

static void setup(void)
{
    const char *specs[] = {"0:test"};
    char rich[1024];
    const struct conf_var vars[] = {{"RICH_JSON_PCT", rich}};

    pct(RICH_JSON, rich, sizeof(rich));
    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "fanout.json", vars, 1);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(fanout, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---------------------------------------------------------------------------- */

static json_t *body_json(const struct http_resp *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

    cr_assert_not_null(j, "not JSON: %s", r->body);
    return j;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is_event(json_t *o, const char *event)
{
    const char *e = str_of(o, "event");

    return e != NULL && strcmp(e, event) == 0;
}

/* The first request record whose target starts with prefix (borrowed from all), or NULL. */
static json_t *request_rec(json_t *all, const char *prefix)
{
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        const char *t = str_of(o, "target");
        if (is_event(o, "request") && t != NULL && strncmp(t, prefix, strlen(prefix)) == 0) {
            return o;
        }
    }
    return NULL;
}

/* The close record of the connection that carried request rec, or NULL. */
static json_t *close_rec(json_t *all, json_t *rec)
{
    json_int_t id = json_integer_value(json_object_get(rec, "conn_id"));
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        if (is_event(o, "close") && json_integer_value(json_object_get(o, "conn_id")) == id) {
            return o;
        }
    }
    return NULL;
}

static uint64_t t_us(json_t *rec)
{
    return (uint64_t)json_integer_value(json_object_get(rec, "t_us"));
}

/* Reads the records until every prefix has a request record, and also its close record when
 * closes is true, or timeout_ms passed. Returns the records (caller decrefs). */
static json_t *wait_records(const char *const *prefixes, size_t n, bool closes, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;

    for (;;) {
        json_t *all = stub_records(fx.record);
        size_t have = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *rec = request_rec(all, prefixes[i]);
            have += rec != NULL && (!closes || close_rec(all, rec) != NULL);
        }
        if (have == n || now_us() >= end) {
            return all;
        }
        json_decref(all);
        usleep(5000);
    }
}

static void get(const char *target, struct http_resp *r)
{
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, NULL, NULL, 0, 0, r), 0, "no answer to %s",
                 target);
}

static void expect_completed(const struct http_resp *r, const char *want)
{
    char buf[64];

    cr_expect_str_eq(http_header(r, "Content-Type", buf, sizeof(buf)), "application/json");
    cr_expect_not_null(http_header(r, "X-Tracegate-Completed", buf, sizeof(buf)), "%s", r->headers);
    cr_expect_str_eq(buf, want);
}

/* A 502/504 in the one error shape; the routes of this suite set expose_errors, so it names the
 * backend and the cause ("detail"). The trace id is the X-Trace-Id header's. */
static void expect_backend_failed(const struct http_resp *r, long status, const char *backend,
                                  const char *cause)
{
    char id[256], buf[64];
    json_t *j;

    cr_expect_eq(r->status, status, "got %ld: %s", r->status, r->body);
    cr_expect_str_eq(http_header(r, "Content-Type", buf, sizeof(buf)), "application/json");
    cr_expect_null(http_header(r, "X-Tracegate-Completed", buf, sizeof(buf)));
    j = body_json(r);
    cr_expect_str_eq(str_of(j, "error"),
                     status == 504 ? "upstream timeout" : "upstream unavailable", "%s", r->body);
    cr_expect_str_eq(str_of(j, "backend"), backend, "%s", r->body);
    cr_expect_str_eq(str_of(j, "detail"), cause, "%s", r->body);
    cr_assert_not_null(http_header(r, "X-Trace-Id", id, sizeof(id)));
    cr_expect_str_eq(str_of(j, "trace_id"), id);
    json_decref(j);
}

/* ---- concurrency and tracing ------------------------------------------------------------- */

Test(fanout, three_slow_backends_run_concurrently)
{
    struct http_resp r;
    json_t *j;

    get("/c3/p%C3%BC", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_lt(r.total_ms, 450.0, "3 x 300 ms took %.1f ms: not concurrent", r.total_ms);
    cr_expect_geq(r.total_ms, 295.0, "%.1f ms: faster than one backend", r.total_ms);
    cr_log_info("3 x 300 ms fan-out answered in %.1f ms", r.total_ms);
    expect_completed(&r, "true");
    j = body_json(&r);
    cr_expect_eq(json_object_size(j), 3, "%s", r.body);
    cr_expect_str_eq(str_of(json_object_get(j, "a"), "target"), "/a/p%C3%BC?delay_ms=300");
    cr_expect_str_eq(str_of(json_object_get(j, "b"), "target"), "/b/p%C3%BC?delay_ms=300");
    cr_expect_str_eq(str_of(json_object_get(j, "c"), "target"), "/c/p%C3%BC?delay_ms=300");
    json_decref(j);
    http_resp_free(&r);
}

Test(fanout, each_backend_call_is_a_span_of_the_trace)
{
    const char *prefixes[] = {"/a/", "/b/", "/c/"};
    const char *names[] = {"\"upstream\":\"a\"", "\"upstream\":\"b\"", "\"upstream\":\"c\""};
    struct http_resp r;
    char id[256];
    char spans[3][17] = {{0}};
    json_t *all;

    get("/c3/x", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    all = wait_records(prefixes, 3, false, 2000);
    for (size_t i = 0; i < 3; i++) {
        json_t *rec = request_rec(all, prefixes[i]);
        const char *tp = rec != NULL ? record_header(rec, "traceparent") : NULL;
        char span_kv[64];
        const char *line[] = {"\"event\":\"upstream.done\"", names[i], id, span_kv, NULL};
        cr_assert_not_null(tp, "no traceparent at %s", prefixes[i]);
        cr_expect_str_eq(record_header(rec, "X-Trace-Id"), id);
        cr_assert_eq(strlen(tp), 55);
        memcpy(spans[i], tp + 36, 16);
        snprintf(span_kv, sizeof(span_kv), "\"span_id\":\"%s\"", spans[i]);
        cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 2000), 1,
                     "one upstream.done naming %s with the span it sent: %s", names[i],
                     fx.gw.log_path);
    }
    cr_expect_str_neq(spans[0], spans[1]);
    cr_expect_str_neq(spans[0], spans[2]);
    cr_expect_str_neq(spans[1], spans[2]);
    json_decref(all);
    http_resp_free(&r);
}

Test(fanout, sixteen_backends_at_once_all_merged)
{
    struct http_resp r;
    json_t *j;
    json_t *all;
    size_t i;
    json_t *o;
    int requests = 0;

    get("/sixteen", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_lt(r.total_ms, 1000.0, "16 x 200 ms took %.1f ms", r.total_ms);
    cr_log_info("16 x 200 ms fan-out answered in %.1f ms", r.total_ms);
    expect_completed(&r, "true");
    j = body_json(&r);
    cr_expect_eq(json_object_size(j), 16, "%s", r.body);
    for (int k = 0; k < 16; k++) {
        char name[16], target[64];
        snprintf(name, sizeof(name), "b%02d", k);
        snprintf(target, sizeof(target), "/s%02d?delay_ms=200", k);
        cr_expect_str_eq(str_of(json_object_get(j, name), "target"), target);
    }
    all = stub_records(fx.record);
    json_array_foreach(all, i, o)
    {
        requests += is_event(o, "request");
    }
    cr_expect_eq(requests, 16);
    json_decref(all);
    json_decref(j);
    http_resp_free(&r);
}

/* ---- merge -------------------------------------------------------------------------------- */

Test(fanout, merge_keeps_nested_json_and_utf8_intact)
{
    struct http_resp r;

    get("/rich", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_completed(&r, "true");
    cr_expect_str_eq(r.body, "{\"r\":" RICH_JSON "}");
    http_resp_free(&r);
}

Test(fanout, merged_size_cap_both_sides)
{
    struct http_resp r;
    json_t *j;

    get("/merged-fits", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(r.body_len, SMALL_MERGED, "%s", r.body);
    http_resp_free(&r);
    get("/merged-over", &r);
    cr_expect_eq(r.status, 502, "%s", r.body);
    j = body_json(&r);
    cr_expect_str_eq(str_of(j, "error"), "upstream response too large");
    cr_expect_str_eq(str_of(j, "detail"), "merged response too large");
    cr_expect(json_is_string(json_object_get(j, "trace_id")));
    json_decref(j);
    http_resp_free(&r);
}

Test(fanout, backend_body_cap_both_sides)
{
    struct http_resp r;

    get("/cap-fits", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(r.body, "{\"a\":{\"k\":\"xxxxxxxxxx\"}}");
    http_resp_free(&r);
    get("/cap-over", &r);
    expect_backend_failed(&r, 502, "a", "answer too large");
    http_resp_free(&r);
}

/* ---- failures ----------------------------------------------------------------------------- */

Test(fanout, required_failure_cancels_the_slow_sibling_at_once)
{
    const char *prefixes[] = {"/bad", "/slow"};
    struct http_resp r;
    json_t *all;
    json_t *bad, *bad_close, *slow, *slow_close;
    int64_t gap_us;

    get("/fail", &r);
    expect_backend_failed(&r, 502, "bad", "status 500");
    cr_expect_lt(r.total_ms, 1500.0, "took %.1f ms: the 5 s sibling was waited for", r.total_ms);
    all = wait_records(prefixes, 2, true, 3000);
    bad = request_rec(all, "/bad");
    slow = request_rec(all, "/slow");
    cr_assert(bad != NULL && slow != NULL, "stub saw both calls");
    bad_close = close_rec(all, bad);
    slow_close = close_rec(all, slow);
    cr_assert_not_null(bad_close, "the stub closes after its 500 (Connection: close)");
    cr_assert_not_null(slow_close, "the sibling's connection was not closed");
    cr_expect_str_eq(str_of(slow_close, "by"), "peer");
    cr_expect_str_eq(str_of(slow_close, "while"), "waiting");
    /* The 500 went out 100 ms after its request; the sibling must not be closed before. */
    cr_expect_geq(t_us(slow_close), t_us(bad) + 90000u, "sibling closed before the failure");
    gap_us = (int64_t)t_us(slow_close) - (int64_t)t_us(bad_close);
    cr_expect_lt(gap_us, 100000, "sibling closed %lld us after the failing answer",
                 (long long)gap_us);
    cr_log_info("sibling closed %lld us after the failing backend's answer", (long long)gap_us);
    json_decref(all);
    http_resp_free(&r);
}

Test(fanout, optional_timeout_gives_partial_answer)
{
    struct http_resp r;
    json_t *j;
    json_t *e;

    get("/opt", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_lt(r.total_ms, 1500.0, "%.1f ms: the optional timeout did not cut", r.total_ms);
    cr_expect_geq(r.total_ms, 190.0, "%.1f ms: answered before the 200 ms timeout", r.total_ms);
    expect_completed(&r, "false");
    j = body_json(&r);
    cr_expect(json_is_object(json_object_get(j, "main")), "%s", r.body);
    cr_expect(json_is_null(json_object_get(j, "extra")), "%s", r.body);
    e = json_object_get(json_object_get(j, "_errors"), "extra");
    cr_expect_str_eq(str_of(e, "error"), "timeout", "%s", r.body);
    cr_expect(json_is_null(json_object_get(e, "status")), "%s", r.body);
    cr_expect_null(json_object_get(json_object_get(j, "_errors"), "main"));
    json_decref(j);
    http_resp_free(&r);
}

Test(fanout, required_invalid_json_is_502_naming_it)
{
    struct http_resp r;

    get("/badjson-req", &r);
    expect_backend_failed(&r, 502, "garbage", "invalid json");
    http_resp_free(&r);
}

Test(fanout, optional_invalid_json_is_null_with_error)
{
    struct http_resp r;
    json_t *j;
    json_t *e;

    get("/badjson-opt", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_completed(&r, "false");
    j = body_json(&r);
    cr_expect(json_is_object(json_object_get(j, "ok")));
    cr_expect(json_is_null(json_object_get(j, "garbage")));
    e = json_object_get(json_object_get(j, "_errors"), "garbage");
    cr_expect_str_eq(str_of(e, "error"), "invalid json", "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(e, "status")), 200, "%s", r.body);
    json_decref(j);
    http_resp_free(&r);
}

/* Without expose_errors the patient's app learns nothing of the topology: the body is the
 * error and the trace id only, and the log line has the backend and the cause. */
Test(fanout, errors_name_no_backend_unless_exposed)
{
    const char *needles[] = {"\"event\":\"request.done\"", "\"backend\":\"gone\"",
                             "\"reason\":\"connect refused\"", NULL};
    struct http_resp r;
    json_t *j;

    get("/down-quiet", &r);
    cr_expect_eq(r.status, 502, "%s", r.body);
    j = body_json(&r);
    cr_expect_eq(json_object_size(j), 2, "%s", r.body);
    cr_expect_str_eq(str_of(j, "error"), "upstream unavailable", "%s", r.body);
    cr_expect(json_is_string(json_object_get(j, "trace_id")), "%s", r.body);
    cr_expect_null(strstr(r.body, "gone"), "%s", r.body);
    cr_expect_null(strstr(r.body, "refused"), "%s", r.body);
    json_decref(j);
    http_resp_free(&r);
    cr_expect_eq(proc_log_wait(&fx.gw, needles, 1, 3000), 1, "log %s", fx.gw.log_path);
}

Test(fanout, required_timeout_is_504)
{
    struct http_resp r;

    get("/timeout", &r);
    expect_backend_failed(&r, 504, "slow", "timeout");
    cr_expect_lt(r.total_ms, 1500.0, "%.1f ms", r.total_ms);
    http_resp_free(&r);
}

Test(fanout, route_deadline_is_504)
{
    struct http_resp r;

    get("/deadline", &r);
    expect_backend_failed(&r, 504, "slow", "route deadline");
    cr_expect_geq(r.total_ms, 290.0, "%.1f ms", r.total_ms);
    cr_expect_lt(r.total_ms, 1500.0, "%.1f ms", r.total_ms);
    http_resp_free(&r);
}

Test(fanout, required_connect_refused_is_502_at_once)
{
    struct http_resp r;

    get("/down", &r);
    expect_backend_failed(&r, 502, "gone", "connect refused");
    cr_expect_lt(r.total_ms, 1500.0, "%.1f ms: the 2 s sibling was waited for", r.total_ms);
    http_resp_free(&r);
}

/* ---- the client leaves ------------------------------------------------------------------- */

Test(fanout, client_leaving_closes_every_branch)
{
    const char *prefixes[] = {"/hang0", "/hang1", "/hang2", "/hang3"};
    const char *req = "GET /leave HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *line[] = {"\"event\":\"request.done\"", "\"path\":\"/leave\"", "\"status\":499",
                          NULL};
    int fd = tcp_connect(fx.gw.ports[0]);
    json_t *all;
    uint64_t t_close;
    struct http_resp r;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, req, strlen(req)), 0);
    all = wait_records(prefixes, 4, false, 3000);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_not_null(request_rec(all, prefixes[i]), "%s never reached the stub", prefixes[i]);
    }
    json_decref(all);
    t_close = now_us();
    close(fd);
    all = wait_records(prefixes, 4, true, 3000);
    for (size_t i = 0; i < 4; i++) {
        json_t *c = close_rec(all, request_rec(all, prefixes[i]));
        cr_assert_not_null(c, "%s still open", prefixes[i]);
        cr_expect_str_eq(str_of(c, "by"), "peer");
        cr_expect_lt(t_us(c) - t_close, 200000u, "%s closed %llu us after the client", prefixes[i],
                     (unsigned long long)(t_us(c) - t_close));
        cr_log_info("%s closed %llu us after the client", prefixes[i],
                    (unsigned long long)(t_us(c) - t_close));
    }
    json_decref(all);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 2000), 1, "log %s", fx.gw.log_path);
    get("/cap-fits", &r); /* the worker is still fine */
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
}

/* ---- what a backend receives ------------------------------------------------------------- */

Test(fanout, backends_get_end_to_end_headers_but_not_the_query)
{
    const char *h[] = {"Authorization: Bearer t0k",
                       "Accept-Language: de-CH",
                       "Accept-Encoding: gzip",
                       "Accept: text/html",
                       "If-None-Match: \"v1\"",
                       "Content-Type: text/plain",
                       "Connection: keep-alive, X-Hop",
                       "X-Hop: 1",
                       NULL};
    const char *prefixes[] = {"/h/"};
    struct http_resp r;
    json_t *all;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/hdr/42?secret=phi", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    all = wait_records(prefixes, 1, false, 2000);
    rec = request_rec(all, "/h/");
    cr_assert_not_null(rec);
    cr_expect_str_eq(str_of(rec, "target"), "/h/42");
    cr_expect_str_eq(record_header(rec, "Authorization"), "Bearer t0k");
    cr_expect_str_eq(record_header(rec, "Accept-Language"), "de-CH");
    cr_expect_str_eq(record_header(rec, "Accept"), "application/json");
    cr_expect_null(record_header(rec, "Accept-Encoding"), "a compressed answer cannot be merged");
    cr_expect_null(record_header(rec, "If-None-Match"), "a 304 cannot be merged");
    cr_expect_null(record_header(rec, "Content-Type"), "a GET backend call has no body");
    cr_expect_null(record_header(rec, "X-Hop"));
    cr_expect_str_eq(record_header(rec, "X-Forwarded-For"), "127.0.0.1");
    cr_expect_not_null(record_header(rec, "X-Request-Timeout-Ms"));
    json_decref(all);
    http_resp_free(&r);
}

Test(fanout, body_goes_only_to_methods_that_carry_one)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"answers\":[1,2,3]}";
    const char *prefixes[] = {"/p", "/g"};
    struct http_resp r;
    json_t *all;
    json_t *p, *g;

    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/post", h, body, strlen(body), 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    all = wait_records(prefixes, 2, false, 2000);
    p = request_rec(all, "/p");
    g = request_rec(all, "/g");
    cr_assert(p != NULL && g != NULL);
    cr_expect_str_eq(str_of(p, "method"), "POST");
    cr_expect_eq(json_integer_value(json_object_get(p, "body_len")), (json_int_t)strlen(body));
    cr_expect_str_eq(record_header(p, "Content-Type"), "application/json");
    cr_expect_str_eq(str_of(g, "method"), "GET");
    cr_expect_eq(json_integer_value(json_object_get(g, "body_len")), 0);
    cr_expect_null(record_header(g, "Content-Type"));
    json_decref(all);
    http_resp_free(&r);
}
