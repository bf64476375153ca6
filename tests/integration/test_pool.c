/* Upstream pools through the real binary: calls spread over the targets (least request, round
 * robin, weights), a target that dies or answers 503 is ejected and traffic moves, fan-out
 * backends use the same pools, and a reload keeps what the pool learnt. Each target is a tg-stub
 * process of its own (tests/support/targets.h), so one can be killed under load. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
    targets_gateway_start(&tg, 3, true, "pool.json", &gw, conf_path, sizeof(conf_path));
}

static void teardown(void)
{
    targets_gateway_stop(&tg, &gw, conf_path);
}

TestSuite(pool, .init = setup, .fini = teardown, .timeout = 60);

static int get(const char *target)
{
    struct http_resp r;
    int status;

    cr_assert_eq(http_do(gw.ports[0], "GET", target, NULL, NULL, 0, 5000, &r), 0, "%s", target);
    status = (int)r.status;
    http_resp_free(&r);
    return status;
}

/* Log lines of the gateway holding every one of the needles (NULL-terminated). */
static int log_count(const char *a, const char *b, const char *c)
{
    const char *needles[] = {a, b, c, NULL};

    return proc_log_count(&gw, needles);
}

/* "target":"http://127.0.0.1:PORT" of target i, for log searches. */
static const char *target_field(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "\"target\":\"http://127.0.0.1:%d\"", tg.port[i]);
    return buf;
}

Test(pool, least_request_spreads_calls_over_every_target)
{
    for (int k = 0; k < 60; k++) {
        cr_assert_eq(get("/s/spread"), 200);
    }
    for (size_t i = 0; i < 3; i++) {
        cr_expect_geq(targets_count(&tg, i, "/spread"), 8, "target %zu: %d of 60", i,
                      targets_count(&tg, i, "/spread"));
    }
}

Test(pool, round_robin_takes_turns_by_weight)
{
    for (int k = 0; k < 30; k++) {
        cr_assert_eq(get("/rr/turn"), 200);
    }
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(targets_count(&tg, i, "/turn"), 10, "target %zu", i);
    }
    for (int k = 0; k < 40; k++) {
        cr_assert_eq(get("/w/weighted"), 200);
    }
    cr_expect_eq(targets_count(&tg, 0, "/weighted"), 10);
    cr_expect_eq(targets_count(&tg, 1, "/weighted"), 30);
}

Test(pool, connections_are_kept_and_reused_per_target)
{
    for (int k = 0; k < 30; k++) {
        cr_assert_eq(get("/rr/reuse"), 200);
    }
    for (size_t i = 0; i < 3; i++) {
        /* one call at a time: each worker keeps one connection to each target */
        cr_expect_eq(targets_count(&tg, i, "/reuse"), 10, "target %zu", i);
        cr_expect_leq(targets_opened(&tg, i), 2, "target %zu: %d connections for 10 calls", i,
                      targets_opened(&tg, i));
    }
}

Test(pool, a_target_answering_503_is_ejected_and_traffic_moves)
{
    char t0[64];

    targets_behave(&tg, 0, "status=503");
    for (int k = 0; k < 40; k++) {
        /* a GET answered 503 goes once more, to another target: the client never sees it */
        cr_expect_eq(get("/s/sick"), 200);
    }
    /* five in a row eject it; after that it gets nothing */
    cr_expect_eq(targets_count(&tg, 0, "/sick"), 5);
    cr_expect_eq(log_count("\"event\":\"upstream.ejected\"", target_field(0, t0, sizeof(t0)),
                           "\"failures\":5"),
                 1, "%s", gw.log_path);
}

/* Steady GETs from a few client threads. */
struct load {
    pthread_t th[4];
    atomic_bool stop;
    atomic_int ok, errors;
};

static void *load_main(void *arg)
{
    struct load *l = arg;

    while (!atomic_load(&l->stop)) {
        struct http_resp r;
        int rc = http_do(gw.ports[0], "GET", "/s/load", NULL, NULL, 0, 5000, &r);
        atomic_fetch_add(rc == 0 && r.status == 200 ? &l->ok : &l->errors, 1);
        http_resp_free(&r);
    }
    return NULL;
}

Test(pool, a_killed_target_costs_a_bounded_number_of_requests)
{
    struct load l = {0};
    char t2[64];
    const char *ejected[] = {"\"event\":\"upstream.ejected\"", target_field(2, t2, sizeof(t2)),
                             NULL};
    const char *failed[] = {"\"event\":\"upstream.done\"", t2, "\"err\"", NULL};
    int before, failed_attempts, errors_to_ejection;

    for (size_t i = 0; i < 4; i++) {
        pthread_create(&l.th[i], NULL, load_main, &l);
    }
    usleep(500000);
    targets_kill(&tg, 2, SIGKILL);
    cr_expect_eq(proc_log_wait(&gw, ejected, 1, 5000), 1, "not ejected: %s", gw.log_path);
    errors_to_ejection = atomic_load(&l.errors);
    failed_attempts = proc_log_count(&gw, failed);
    before = atomic_load(&l.ok);
    usleep(1500000);
    atomic_store(&l.stop, true);
    for (size_t i = 0; i < 4; i++) {
        pthread_join(l.th[i], NULL);
    }
    /* Until the ejection, a failed attempt is retried elsewhere; only a retry the budget
     * refuses (at most one per client thread beyond the 3 it always allows) reaches a client. */
    cr_expect_leq(errors_to_ejection, 2, "%d client errors", errors_to_ejection);
    /* Five failures in a row eject it, plus what was in flight on other connections. */
    cr_expect_leq(failed_attempts, 5 + 4, "%d attempts failed on the dead target", failed_attempts);
    cr_expect_eq(atomic_load(&l.errors), errors_to_ejection, "client errors after the ejection");
    cr_expect_eq(proc_log_count(&gw, failed), failed_attempts, "attempts after the ejection");
    cr_expect_gt(atomic_load(&l.ok) - before, 50, "the load went on");
}

Test(pool, fanout_backends_use_the_pools)
{
    for (int k = 0; k < 10; k++) {
        struct http_resp r;
        char done[16];
        cr_assert_eq(http_do(gw.ports[0], "GET", "/merged/7", NULL, NULL, 0, 5000, &r), 0);
        cr_expect_eq(r.status, 200, "%s", r.body);
        cr_expect_str_eq(http_header(&r, "X-Tracegate-Completed", done, sizeof(done)), "true");
        http_resp_free(&r);
    }
    /* every call ended on the live target: the dead one refused, the retry went on */
    cr_expect_eq(targets_count(&tg, 1, "/fa/7"), 10);
    cr_expect_eq(targets_count(&tg, 1, "/fb/7"), 10);
}

Test(pool, a_reload_keeps_ejections_of_targets_still_there)
{
    char t0[64], line[160];
    const char *reloaded[] = {"\"event\":\"conf.reloaded\"", NULL};
    struct http_resp r;

    targets_behave(&tg, 0, "status=503");
    for (int k = 0; k < 15; k++) {
        cr_expect_eq(get("/rr/before"), 200);
    }
    cr_expect_eq(targets_count(&tg, 0, "/before"), 5);
    cr_assert_eq(log_count("\"event\":\"upstream.ejected\"", target_field(0, t0, sizeof(t0)),
                           "\"upstream\":\"rr\""),
                 1, "%s", gw.log_path);
    targets_behave(&tg, 0, "");
    conf_template_rewrite(conf_path, "pool_reloaded.json", tg.vars, tg.n_vars);
    proc_signal(&gw, SIGHUP);
    cr_assert_eq(proc_log_wait(&gw, reloaded, 1, 5000), 1, "%s", gw.log_path);
    for (int k = 0; k < 15; k++) {
        cr_expect_eq(get("/rr/after"), 200);
    }
    /* still ejected for the rest of its 30 s: the new conf's requests avoid it too */
    cr_expect_eq(targets_count(&tg, 0, "/after"), 0);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 5000, &r), 0);
    snprintf(line, sizeof(line),
             "\ntracegate_upstream_target_ejected{upstream=\"rr\",target=\"http://127.0.0.1:%d\"} "
             "1\n",
             tg.port[0]);
    cr_expect(strstr(r.body, line) != NULL, "%s", r.body);
    http_resp_free(&r);
}
