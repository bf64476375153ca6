/* Active health checks and readiness through the real binary: with every target down the
 * gateway answers 503 at once (not a connect attempt each) and /readyz fails, and both recover
 * when the targets return; a check takes out a target that gets no traffic; checks slow down
 * while an upstream is idle. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"
#include "tests/support/targets.h"

static struct targets tg;
static struct proc gw;
static char conf_path[128];

static void setup(void)
{
    targets_gateway_start(&tg, 3, false, "health.json", &gw, conf_path, sizeof(conf_path));
}

static void teardown(void)
{
    targets_gateway_stop(&tg, &gw, conf_path);
}

TestSuite(health, .init = setup, .fini = teardown, .timeout = 60);

/* Waits up to 5 s for want log lines of event about target i of upstream up. */
static int wait_event(const char *event, const char *up, size_t i, int want)
{
    char e[64], u[64], t[64];
    const char *needles[] = {e, u, t, NULL};

    snprintf(e, sizeof(e), "\"event\":\"%s\"", event);
    snprintf(u, sizeof(u), "\"upstream\":\"%s\"", up);
    snprintf(t, sizeof(t), "\"target\":\"http://127.0.0.1:%d\"", tg.port[i]);
    return proc_log_wait(&gw, needles, want, 5000);
}

Test(health, every_target_down_is_503_at_once_and_readiness_fails_until_they_return)
{
    struct http_resp r;
    char ra[16];
    double slowest = 0;
    uint64_t end;
    const char *unstable[] = {"\"event\":\"upstream.unstable\"", "\"upstream\":\"checked\"",
                              "\"reason\":\"no usable target\"", NULL};
    const char *recovered[] = {"\"event\":\"upstream.recovered\"", "\"upstream\":\"checked\"",
                               NULL};

    targets_kill(&tg, 0, SIGTERM);
    targets_kill(&tg, 1, SIGTERM);
    cr_assert_eq(wait_event("upstream.target_down", "checked", 0, 1), 1, "%s", gw.log_path);
    cr_assert_eq(wait_event("upstream.target_down", "checked", 1, 1), 1, "%s", gw.log_path);
    for (int k = 0; k < 20; k++) {
        cr_assert_eq(http_do(gw.ports[0], "GET", "/c/x", NULL, NULL, 0, 5000, &r), 0);
        cr_expect_eq(r.status, 503, "%s", r.body);
        cr_expect(strstr(r.body, "\"error\":\"upstream unstable\"") != NULL, "%s", r.body);
        cr_expect(strstr(r.body, "\"trace_id\"") != NULL, "%s", r.body);
        cr_expect_not_null(http_header(&r, "Retry-After", ra, sizeof(ra)));
        slowest = r.total_ms > slowest ? r.total_ms : slowest;
        http_resp_free(&r);
    }
    cr_expect_lt(slowest, 200.0, "answered at once, not after a connect: %.1f ms", slowest);
    cr_expect_eq(proc_log_count(&gw, unstable), 1, "%s", gw.log_path);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/readyz", NULL, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, 503);
    cr_expect_str_eq(r.body, "{\"status\":\"not ready\",\"unavailable\":[\"checked\"]}");
    http_resp_free(&r);

    targets_restart(&tg, 0);
    targets_restart(&tg, 1);
    cr_assert_eq(wait_event("upstream.target_up", "checked", 0, 1), 1, "%s", gw.log_path);
    cr_assert_eq(wait_event("upstream.target_up", "checked", 1, 1), 1, "%s", gw.log_path);
    /* calls succeed at once; the upstream is said recovered after a second without refusals */
    end = now_us() + 5000000u;
    while (now_us() < end && proc_log_count(&gw, recovered) == 0) {
        cr_assert_eq(http_do(gw.ports[0], "GET", "/c/x", NULL, NULL, 0, 5000, &r), 0);
        cr_expect_eq(r.status, 200, "%s", r.body);
        http_resp_free(&r);
        usleep(20000);
    }
    cr_expect_eq(proc_log_count(&gw, recovered), 1, "%s", gw.log_path);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/readyz", NULL, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
}

/* Targets that accept and never answer: without checks each request would wait out the
 * route's 5 s; with them, once the checks time out, the answer is 503 at once. */
Test(health, every_target_hanging_is_503_at_once_not_after_a_timeout)
{
    struct http_resp r;
    double slowest = 0;

    targets_behave(&tg, 0, "hang=1");
    targets_behave(&tg, 1, "hang=1");
    cr_assert_eq(wait_event("upstream.target_down", "checked", 0, 1), 1, "%s", gw.log_path);
    cr_assert_eq(wait_event("upstream.target_down", "checked", 1, 1), 1, "%s", gw.log_path);
    for (int k = 0; k < 10; k++) {
        cr_assert_eq(http_do(gw.ports[0], "GET", "/c/x", NULL, NULL, 0, 10000, &r), 0);
        cr_expect_eq(r.status, 503, "%s", r.body);
        slowest = r.total_ms > slowest ? r.total_ms : slowest;
        http_resp_free(&r);
    }
    cr_expect_lt(slowest, 200.0, "waited on a hanging target: %.1f ms", slowest);
    cr_expect_eq(targets_count(&tg, 0, "/x") + targets_count(&tg, 1, "/x"), 0);
    targets_behave(&tg, 0, "");
    targets_behave(&tg, 1, "");
    cr_assert_eq(wait_event("upstream.target_up", "checked", 0, 1), 1, "%s", gw.log_path);
    cr_assert_eq(wait_event("upstream.target_up", "checked", 1, 1), 1, "%s", gw.log_path);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/c/x", NULL, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
}

Test(health, a_check_takes_out_a_target_that_gets_no_traffic)
{
    struct http_resp r;
    char line[160];

    targets_behave(&tg, 1, "status=500");
    cr_assert_eq(wait_event("upstream.target_down", "checked", 1, 1), 1, "%s", gw.log_path);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 5000, &r), 0);
    snprintf(
        line, sizeof(line),
        "\ntracegate_upstream_healthy{upstream=\"checked\",target=\"http://127.0.0.1:%d\"} 0\n",
        tg.port[1]);
    cr_expect(strstr(r.body, line) != NULL, "%s", r.body);
    http_resp_free(&r);
    for (int k = 0; k < 20; k++) {
        cr_assert_eq(http_do(gw.ports[0], "GET", "/c/after", NULL, NULL, 0, 5000, &r), 0);
        cr_expect_eq(r.status, 200, "%s", r.body);
        http_resp_free(&r);
    }
    cr_expect_eq(targets_count(&tg, 1, "/after"), 0, "a target down got calls");
    cr_expect_eq(targets_count(&tg, 0, "/after"), 20);
}

Test(health, checks_slow_down_while_an_upstream_has_no_calls)
{
    int idle, busy;
    uint64_t end;

    usleep(1000000);
    /* idle: the first check at start, then one per 1.5 s */
    idle = targets_count(&tg, 2, "/health");
    cr_expect(idle >= 1 && idle <= 2, "%d checks in a second without calls", idle);
    end = now_us() + 1500000;
    while (now_us() < end) {
        struct http_resp r;
        cr_assert_eq(http_do(gw.ports[0], "GET", "/i/x", NULL, NULL, 0, 5000, &r), 0);
        http_resp_free(&r);
        usleep(10000);
    }
    /* busy: one per 50 ms once the idle wait in progress is over (at 1.5 s); a generous floor
     * for a loaded machine */
    busy = targets_count(&tg, 2, "/health") - idle;
    cr_expect_geq(busy, 6, "%d checks in a busy second and a half", busy);
}
