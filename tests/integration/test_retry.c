/* Safe retries through the real binary: a POST that reached a target is never sent again, one
 * that never left goes to another target, retries end by the route's deadline with a smaller
 * budget header each time and a span each, and the retry budget caps them when every target
 * fails. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"
#include "tests/support/targets.h"

static struct targets tg;
static struct proc gw;
static char conf_path[128];

static void setup(void)
{
    targets_gateway_start(&tg, 3, true, "retry.json", &gw, conf_path, sizeof(conf_path));
}

static void teardown(void)
{
    targets_gateway_stop(&tg, &gw, conf_path);
}

TestSuite(retry, .init = setup, .fini = teardown, .timeout = 60);

static int post(const char *target, long *status)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_resp r;
    int rc = http_do(gw.ports[0], "POST", target, h, "{\"answers\":[1]}", 15, 5000, &r);

    *status = r.status;
    http_resp_free(&r);
    return rc;
}

Test(retry, a_post_a_target_read_then_reset_reaches_the_targets_exactly_once)
{
    char target[64];
    int bad = 0;

    targets_behave(&tg, 0, "reset=1");
    for (int k = 0; k < 6; k++) {
        long status;
        snprintf(target, sizeof(target), "/post/sub?n=%d", k);
        cr_assert_eq(post(target, &status), 0);
        bad += status == 502;
        snprintf(target, sizeof(target), "/sub?n=%d", k);
        cr_expect_eq(targets_count_all(&tg, target), 1, "submission %d sent %d times", k,
                     targets_count_all(&tg, target));
    }
    /* round robin: every third went to the target that resets; its client got a 502 */
    cr_expect_eq(bad, 2);
    cr_expect_eq(targets_count(&tg, 0, "/sub"), 2);
}

Test(retry, a_post_refused_at_connect_goes_to_another_target)
{
    char target[64];
    const char *first[] = {"\"event\":\"upstream.done\"", "\"attempt\":1",
                           "\"reason\":\"connect refused\"", NULL};
    const char *any[] = {"\"event\":\"upstream.done\"", "\"reason\":\"connect refused\"", NULL};
    int n;

    for (int k = 0; k < 6; k++) {
        long status;
        snprintf(target, sizeof(target), "/refused/sub?n=%d", k);
        cr_assert_eq(post(target, &status), 0);
        cr_expect_eq(status, 200, "submission %d", k);
        snprintf(target, sizeof(target), "/sub?n=%d", k);
        cr_expect_eq(targets_count(&tg, 1, target), 1, "submission %d", k);
    }
    /* calls tried the dead target first until it was ejected (five in a row): those never left
     * the gateway, and went on to the live target */
    n = proc_log_count(&gw, first);
    cr_expect(n >= 1 && n <= 5, "%d refused first attempts: %s", n, gw.log_path);
    cr_expect_eq(proc_log_count(&gw, any), n, "a retry was refused too: %s", gw.log_path);
}

/* The request records of the stub whose target starts with prefix, in arrival order. */
static json_t *records_of(const char *prefix)
{
    json_t *all = stub_records(tg.record), *out = json_array(), *o;
    size_t i;

    json_array_foreach(all, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "target"));
        if (t != NULL && strncmp(t, prefix, strlen(prefix)) == 0) {
            json_array_append(out, o);
        }
    }
    json_decref(all);
    return out;
}

Test(retry, retries_end_by_the_deadline_and_each_attempt_gets_less_budget)
{
    const char *h[] = {"X-Trace-Id: retry-deadline-1", NULL};
    const char *attempt_lines[] = {"\"event\":\"upstream.done\"",
                                   "\"trace_id\":\"retry-deadline-1\"", NULL};
    struct http_resp r;
    json_t *recs;
    long last = 1000000;
    char *log;

    targets_behave(&tg, 0, "delay_ms=400&status=503");
    targets_behave(&tg, 1, "delay_ms=400&status=503");
    cr_assert_eq(http_do(gw.ports[0], "GET", "/deadline/d", h, NULL, 0, 5000, &r), 0);
    /* 503 at 400 ms, again at about 800, then the third attempt runs out of the 1000 ms */
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_geq(r.total_ms, 950.0);
    cr_expect_lt(r.total_ms, 1400.0, "retries outlived the deadline: %.0f ms", r.total_ms);
    http_resp_free(&r);
    recs = records_of("/d");
    cr_expect_eq(json_array_size(recs), 3, "attempts");
    for (size_t i = 0; i < json_array_size(recs); i++) {
        const char *b = record_header(json_array_get(recs, i), "X-Request-Timeout-Ms");
        long v = b != NULL ? strtol(b, NULL, 10) : -1;
        cr_expect(v > 0 && v < last, "attempt %zu got budget %ld after %ld", i + 1, v, last);
        last = v;
    }
    /* a span and an upstream.done line per attempt, the first two on different targets */
    cr_expect_eq(proc_log_wait(&gw, attempt_lines, 3, 3000), 3, "%s", gw.log_path);
    log = proc_log(&gw);
    cr_assert_not_null(log);
    for (int a = 1; a <= 3; a++) {
        char needle[32];
        snprintf(needle, sizeof(needle), "\"attempt\":%d,", a);
        cr_expect(strstr(log, needle) != NULL, "no attempt %d: %s", a, gw.log_path);
    }
    free(log);
    if (json_array_size(recs) >= 2) {
        const char *tp1 = record_header(json_array_get(recs, 0), "traceparent");
        const char *tp2 = record_header(json_array_get(recs, 1), "traceparent");
        cr_assert(tp1 != NULL && tp2 != NULL);
        cr_expect(strncmp(tp1, tp2, 36) == 0, "same trace: %s %s", tp1, tp2);
        cr_expect(strncmp(tp1 + 36, tp2 + 36, 16) != 0, "a new span: %s %s", tp1, tp2);
        cr_expect_neq(json_integer_value(json_object_get(json_array_get(recs, 0), "port")),
                      json_integer_value(json_object_get(json_array_get(recs, 1), "port")),
                      "the retry went to the other target");
    }
    json_decref(recs);
}

static void *one_get(void *arg)
{
    struct http_resp r;

    (void)arg;
    http_do(gw.ports[0], "GET", "/budget/b", NULL, NULL, 0, 5000, &r);
    http_resp_free(&r);
    return NULL;
}

Test(retry, the_retry_budget_caps_retries_when_every_target_fails)
{
    pthread_t th[20];
    struct http_resp r;
    const char *refused;
    int attempts;

    targets_behave(&tg, 0, "delay_ms=300&status=503");
    targets_behave(&tg, 1, "delay_ms=300&status=503");
    for (size_t i = 0; i < 20; i++) {
        pthread_create(&th[i], NULL, one_get, NULL);
    }
    for (size_t i = 0; i < 20; i++) {
        pthread_join(th[i], NULL);
    }
    attempts = targets_count_all(&tg, "/b");
    /* 20 calls, max(3, 20 % of 20) retries at once: without the budget, 40 attempts */
    cr_expect_geq(attempts, 21, "%d attempts", attempts);
    cr_expect_leq(attempts, 28, "%d attempts", attempts);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 5000, &r), 0);
    refused = strstr(r.body, "tracegate_upstream_retries_refused_total{upstream=\"failing\"} ");
    cr_expect(refused != NULL && strtol(strchr(refused, '}') + 2, NULL, 10) >= 12, "%s", r.body);
    http_resp_free(&r);
}
