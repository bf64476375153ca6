/* Deadlines through the real binary against the stub upstream: total budgets (not inactivity
 * timers), the budget sent downstream, client budgets where a route allows them, and per-call
 * caps. Time is measured by the test's own CLOCK_MONOTONIC around each request; bounds leave
 * room for a loaded 2-core machine running an ASan build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "deadline.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(deadline, .init = setup, .fini = teardown, .timeout = 60);

/* One timed GET with an X-Trace-Id (and optional extra header); *ms gets the wall time. */
static void timed_get(const char *target, const char *trace, const char *extra, struct http_resp *r,
                      double *ms)
{
    char tid[160];
    const char *h[] = {tid, extra, NULL};
    uint64_t t0;

    snprintf(tid, sizeof(tid), "X-Trace-Id: %s", trace);
    t0 = now_us();
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, h, NULL, 0, 10000, r), 0, "%s: curl %d",
                 target, r->curl_rc);
    *ms = (double)(now_us() - t0) / 1000.0;
    cr_log_info("%s -> %ld in %.1f ms", target, r->status, *ms);
}

/* Asserts the JSON error body {"error":msg,"trace_id":trace}. */
static void expect_error_body(const struct http_resp *r, const char *msg, const char *trace)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

    cr_assert_not_null(j, "not JSON: %s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")), msg, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), trace, "%s", r->body);
    json_decref(j);
}

/* The stub's request record carrying X-Trace-Id trace (new reference), waiting up to 2 s. */
static json_t *wait_request(const char *trace)
{
    uint64_t end = now_us() + 2000000u;

    do {
        json_t *all = stub_records(fx.record);
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o)
        {
            const char *id = record_header(o, "X-Trace-Id");
            if (strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 &&
                id != NULL && strcmp(id, trace) == 0) {
                json_incref(o);
                json_decref(all);
                return o;
            }
        }
        json_decref(all);
        usleep(10000);
    } while (now_us() < end);
    return NULL;
}

/* How many X-Request-Timeout-Ms headers the record has, and the value of the last. */
static size_t budget_headers(const json_t *rec, long *value)
{
    size_t n = 0;
    size_t i;
    json_t *pair;

    json_array_foreach(json_object_get(rec, "headers"), i, pair)
    {
        if (strcasecmp(json_string_value(json_array_get(pair, 0)), "X-Request-Timeout-Ms") == 0) {
            char *end = NULL;
            const char *v = json_string_value(json_array_get(pair, 1));
            *value = strtol(v, &end, 10);
            cr_assert(end != v && *end == '\0', "not a number: \"%s\"", v);
            n++;
        }
    }
    return n;
}

/* ---- the route budget is a total deadline ------------------------------------------------ */

Test(deadline, slow_backend_is_504_at_the_route_budget)
{
    struct http_resp r;
    double ms;

    timed_get("/t300/x?delay_ms=3000", "dl-slow-504", NULL, &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 300.0, "answered before the deadline");
    cr_expect_lt(ms, 450.0, "504 came late");
    expect_error_body(&r, "upstream timeout", "dl-slow-504");
    http_resp_free(&r);
}

Test(deadline, backend_inside_the_budget_is_200)
{
    struct http_resp r;
    double ms;

    timed_get("/t300/x?delay_ms=150", "dl-fast-200", NULL, &r, &ms);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_geq(ms, 150.0);
    http_resp_free(&r);
}

Test(deadline, access_log_says_504_and_why)
{
    const char *line[] = {
        "\"event\":\"request.done\"",   "\"trace_id\":\"dl-log-504\"",      "\"status\":504",
        "\"err\":\"upstream timeout\"", "\"reason\":\"deadline exceeded\"", NULL};
    const char *up[] = {"\"event\":\"upstream.done\"", "\"trace_id\":\"dl-log-504\"",
                        "\"err\":\"upstream timeout\"", NULL};
    struct http_resp r;
    double ms;

    timed_get("/t300/x?delay_ms=3000", "dl-log-504", NULL, &r, &ms);
    cr_assert_eq(r.status, 504);
    http_resp_free(&r);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 2000), 1,
                 "no request.done 504 line with its cause: %s", fx.gw.log_path);
    cr_expect_eq(proc_log_wait(&fx.gw, up, 1, 2000), 1,
                 "no upstream.done line with the timeout: %s", fx.gw.log_path);
}

Test(deadline, trickling_backend_is_cut_at_the_deadline)
{
    struct http_resp r;
    double ms;

    /* 100 bytes, one every 100 ms: 10 s in all, and never idle long enough for an inactivity
     * timer to fire. */
    timed_get("/t500/x?trickle_ms=100&trickle_bytes=100", "dl-trickle", NULL, &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 500.0);
    cr_expect_lt(ms, 650.0, "trickle not cut at the deadline");
    expect_error_body(&r, "upstream timeout", "dl-trickle");
    http_resp_free(&r);
}

/* ---- the budget sent downstream ---------------------------------------------------------- */

Test(deadline, budget_header_is_within_the_route_budget)
{
    struct http_resp r;
    double ms;
    json_t *rec;
    long v = -1;

    timed_get("/t1000/x", "dl-budget-1000", NULL, &r, &ms);
    cr_assert_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
    rec = wait_request("dl-budget-1000");
    cr_assert_not_null(rec, "the stub saw no request");
    cr_expect_eq(budget_headers(rec, &v), 1, "exactly one X-Request-Timeout-Ms");
    cr_expect_geq(v, 1);
    cr_expect_leq(v, 1000);
    cr_expect_gt(v, 500, "budget %ld: most of it should be left for a fast request", v);
    json_decref(rec);
}

Test(deadline, budget_header_shrinks_with_time_already_spent)
{
    const char *head = "POST /t1000/x HTTP/1.1\r\nHost: x\r\nX-Trace-Id: dl-shrink\r\n"
                       "Content-Length: 4\r\n\r\n";
    int fd = tcp_connect(fx.gw.ports[0]);
    json_t *rec;
    char *resp;
    size_t len;
    long v = -1;

    /* The clock starts with the request line: a body that takes 400 ms to arrive leaves about
     * 600 ms for the upstream (100 ms of slack for a gateway slow to read the head). */
    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, head, strlen(head)), 0);
    usleep(400000);
    cr_assert_eq(tcp_send(fd, "abcd", 4), 0);
    rec = wait_request("dl-shrink");
    cr_assert_not_null(rec, "the stub saw no request");
    cr_expect_eq(budget_headers(rec, &v), 1);
    cr_expect_geq(v, 1);
    cr_expect_leq(v, 700, "budget %ld ignores the 400 ms spent reading the body", v);
    json_decref(rec);
    resp = tcp_read_all(fd, 300, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "got: %.200s", resp);
    free(resp);
    close(fd);
}

Test(deadline, budget_header_is_the_per_call_cap_when_smaller)
{
    struct http_resp r;
    double ms;
    json_t *rec;
    long v = -1;

    timed_get("/capped/x", "dl-budget-cap", NULL, &r, &ms);
    cr_assert_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
    rec = wait_request("dl-budget-cap");
    cr_assert_not_null(rec);
    cr_expect_eq(budget_headers(rec, &v), 1);
    cr_expect_geq(v, 1);
    cr_expect_leq(v, 200);
    json_decref(rec);
}

/* ---- client budgets ---------------------------------------------------------------------- */

Test(deadline, client_budget_honoured_where_the_route_allows)
{
    struct http_resp r;
    double ms;

    timed_get("/client/x?delay_ms=1000", "dl-client-ms", "X-Request-Timeout-Ms: 200", &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 200.0);
    cr_expect_lt(ms, 350.0);
    expect_error_body(&r, "upstream timeout", "dl-client-ms");
    http_resp_free(&r);
}

Test(deadline, client_budget_ignored_where_the_route_does_not_allow)
{
    struct http_resp r;
    double ms;
    json_t *rec;
    long v = -1;

    timed_get("/noclient/x?delay_ms=1000", "dl-noclient-ms", "X-Request-Timeout-Ms: 200", &r, &ms);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_geq(ms, 1000.0);
    cr_expect_lt(ms, 1500.0);
    http_resp_free(&r);
    /* The client's value is not passed on either: the stub sees the route's budget. */
    rec = wait_request("dl-noclient-ms");
    cr_assert_not_null(rec);
    cr_expect_eq(budget_headers(rec, &v), 1);
    cr_expect_gt(v, 1000, "budget %ld: the client's 200 leaked through", v);
    cr_expect_leq(v, 2000);
    json_decref(rec);
}

Test(deadline, client_budget_is_sent_downstream)
{
    struct http_resp r;
    double ms;
    json_t *rec;
    long v = -1;

    timed_get("/client/x", "dl-client-down", "X-Request-Timeout-Ms: 200", &r, &ms);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
    rec = wait_request("dl-client-down");
    cr_assert_not_null(rec);
    cr_expect_eq(budget_headers(rec, &v), 1);
    cr_expect_geq(v, 1);
    cr_expect_leq(v, 200);
    json_decref(rec);
}

Test(deadline, grpc_timeout_honoured_where_the_route_allows)
{
    struct http_resp r;
    double ms;

    timed_get("/client/x?delay_ms=1000", "dl-client-grpc", "grpc-timeout: 200m", &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 200.0);
    cr_expect_lt(ms, 350.0);
    http_resp_free(&r);
}

Test(deadline, grpc_timeout_ignored_where_the_route_does_not_allow)
{
    struct http_resp r;
    double ms;

    timed_get("/noclient/x?delay_ms=1000", "dl-noclient-grpc", "grpc-timeout: 200m", &r, &ms);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_geq(ms, 1000.0);
    http_resp_free(&r);
}

Test(deadline, invalid_client_budgets_are_ignored)
{
    /* Each would shorten the budget below the 400 ms backend if it were taken. */
    const char *bad[] = {"X-Request-Timeout-Ms: 0",
                         "X-Request-Timeout-Ms: -200",
                         "X-Request-Timeout-Ms: 200ms",
                         "X-Request-Timeout-Ms: 0000000100",
                         "X-Request-Timeout-Ms: 0x10",
                         "X-Request-Timeout-Ms: 1.5",
                         "grpc-timeout: 200",
                         "grpc-timeout: 200x",
                         "grpc-timeout: 000000100m",
                         "grpc-timeout: -1m",
                         "grpc-timeout: 0m"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_resp r;
        char trace[32];
        double ms;
        snprintf(trace, sizeof(trace), "dl-invalid-%zu", i);
        timed_get("/client/x?delay_ms=400", trace, bad[i], &r, &ms);
        cr_expect_eq(r.status, 200, "\"%s\": %ld %s", bad[i], r.status, r.body);
        cr_expect_geq(ms, 400.0, "\"%s\"", bad[i]);
        cr_expect_lt(ms, 900.0, "\"%s\"", bad[i]);
        http_resp_free(&r);
    }
}

/* ---- per-call caps ----------------------------------------------------------------------- */

Test(deadline, upstream_timeout_caps_the_call_under_a_longer_route)
{
    struct http_resp r;
    double ms;

    timed_get("/capped/x?delay_ms=1000", "dl-up-cap", NULL, &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 200.0);
    cr_expect_lt(ms, 350.0);
    expect_error_body(&r, "upstream timeout", "dl-up-cap");
    http_resp_free(&r);
}

Test(deadline, route_upstream_timeout_caps_the_call)
{
    struct http_resp r;
    double ms;

    timed_get("/callcap/x?delay_ms=1000", "dl-call-cap", NULL, &r, &ms);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(ms, 200.0);
    cr_expect_lt(ms, 350.0);
    http_resp_free(&r);
}

Test(deadline, backend_inside_the_call_cap_is_200)
{
    struct http_resp r;
    double ms;

    timed_get("/capped/x?delay_ms=100", "dl-up-cap-ok", NULL, &r, &ms);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
}

/* A client that spends the route's budget sending its body gets 408, not a 504 that would
 * blame the backend, and nothing reaches the upstream. */
Test(deadline, body_slower_than_the_budget_is_408_and_not_forwarded)
{
    const char *head = "POST /t1000/slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
                       "X-Trace-Id: slow-body-1\r\n\r\n";
    int fd = tcp_connect(fx.gw.ports[0]);
    char *resp;
    size_t len;
    json_t *all;
    size_t i;
    json_t *o;
    int forwarded = 0;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, head, strlen(head)), 0);
    for (int k = 0; k < 12; k++) { /* 12 bytes over 1.2 s against a 1000 ms budget */
        usleep(100000);
        cr_assert_eq(tcp_send(fd, "x", 1), 0);
    }
    resp = tcp_read_all(fd, 2000, &len);
    close(fd);
    cr_expect(strncmp(resp, "HTTP/1.1 408", 12) == 0, "%.120s", resp);
    cr_expect(strstr(resp, "\"trace_id\":\"slow-body-1\"") != NULL, "%s", resp);
    free(resp);
    all = stub_records(fx.record);
    json_array_foreach(all, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "target"));
        forwarded += t != NULL && strcmp(t, "/slowbody") == 0;
    }
    json_decref(all);
    cr_expect_eq(forwarded, 0, "the late request reached the upstream");
}
