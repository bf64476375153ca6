/* Routes the gateway answers itself (health, ready, metrics) and the log level switch. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "local.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(local, .init = setup, .fini = teardown, .timeout = 30);

static void expect_get(const char *target, long status, const char *body_part)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, status, "%s: %ld %s", target, r.status, r.body);
    cr_expect(strstr(r.body, body_part) != NULL, "%s: %s", target, r.body);
    http_resp_free(&r);
}

/* The value of a metric line "name value" in text, or -1. */
static long long metric(const char *text, const char *name)
{
    const char *p = text;
    size_t n = strlen(name);

    while ((p = strstr(p, name)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtoll(p + n + 1, NULL, 10);
        }
        p += n;
    }
    return -1;
}

Test(local, health_and_ready_answer_json)
{
    expect_get("/healthz", 200, "{\"status\":\"ok\"}");
    expect_get("/readyz", 200, "{\"status\":\"ready\"}");
}

Test(local, metrics_count_what_happened)
{
    struct http_resp r;

    for (int i = 0; i < 3; i++) {
        expect_get("/s/x", 200, "\"target\"");
    }
    expect_get("/nowhere", 404, "no route");
    expect_get("/s/x?status=503", 503, "");
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    /* Requests on other workers are summed in: the 5 above plus this one. The 503 is retried
     * once (a GET, 503 is in the default retry_on): 5 upstream calls for 4 proxied requests. */
    cr_expect_eq(metric(r.body, "tracegate_requests_total"), 6, "%s", r.body);
    cr_expect_eq(metric(r.body, "tracegate_upstream_calls_total"), 5, "%s", r.body);
    cr_expect_eq(metric(r.body, "tracegate_responses_total{class=\"4xx\"}"), 1, "%s", r.body);
    cr_expect_eq(metric(r.body, "tracegate_responses_total{class=\"5xx\"}"), 1, "%s", r.body);
    cr_expect_eq(metric(r.body, "tracegate_requests_in_flight"), 1, "%s", r.body);
    cr_expect_eq(metric(r.body, "tracegate_draining"), 0, "%s", r.body);
    cr_expect_geq(metric(r.body, "tracegate_connections"), 1, "%s", r.body);
    http_resp_free(&r);
}

Test(local, log_level_warn_drops_access_lines)
{
    struct proc gw;
    const char *done[] = {"\"event\":\"request.done\"", NULL};
    const char *done_ok[] = {"\"event\":\"request.done\"", "\"status\":200", NULL};
    const char *done_502[] = {"\"event\":\"request.done\"", "\"level\":\"warn\"", "\"status\":502",
                              NULL};
    const char *warn[] = {"\"event\":\"upstream.done\"", "\"level\":\"warn\"", NULL};
    struct http_resp r;

    /* Criterion runs each test in a process of its own, on one thread: setenv is safe. */
    setenv("TRACEGATE_LOG_LEVEL", "warn", 1); /* NOLINT(concurrency-mt-unsafe) */
    cr_assert_eq(gateway_start(&gw, fx.conf_path, NULL), 0, "log %s", gw.log_path);
    unsetenv("TRACEGATE_LOG_LEVEL"); /* NOLINT(concurrency-mt-unsafe) */
    cr_assert_eq(http_do(gw.ports[0], "GET", "/s/ok", NULL, NULL, 0, 0, &r), 0);
    http_resp_free(&r);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/s/bad?reset=1", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 502);
    http_resp_free(&r);
    cr_expect_eq(proc_stop(&gw, SIGTERM, 10000), 0, "log %s", gw.log_path);
    cr_expect_eq(proc_log_count(&gw, done_ok), 0, "info lines written at warn: %s", gw.log_path);
    /* A 5xx access line is a warn line: it stays. */
    cr_expect_eq(proc_log_count(&gw, done_502), 1, "the 502 is a warn line: %s", gw.log_path);
    cr_expect_eq(proc_log_count(&gw, done), 1, "%s", gw.log_path);
    /* the reset GET is retried once by default: each failed attempt is a warn line */
    cr_expect_eq(proc_log_count(&gw, warn), 2, "each failed attempt is a warn line: %s",
                 gw.log_path);
}
