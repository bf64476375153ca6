/* Durable routes when the gateway dies: kill -9 at random moments, the test build dying at each
 * named crash point, an fsync that fails, a disk that fills up. After each run a last gateway
 * drains the spool and the stub's ledger is the judge: nothing acknowledged (2xx or 202) is
 * missing, nothing is stored twice, each patient's submissions arrive in order. And the negative
 * control: a test build that acknowledges before its commit must be caught losing submissions,
 * or these tests could not catch a loss at all.
 *
 * Bounded for CI; `make soak` runs the long kill -9 soak (TG_SOAK=long). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/durable.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/soak.h"

static struct fixture fx;
static char spool[64];
static bool mounted;

static void setup(void)
{
    durable_fixture_start(&fx, spool, sizeof(spool));
}

static void teardown(void)
{
    fixture_stop(&fx);
    if (mounted) {
        umount2(spool, MNT_DETACH);
        mounted = false;
    }
    spool_dir_remove(spool);
}

TestSuite(durable_crash, .init = setup, .fini = teardown, .timeout = 240);

static void start(const char *const *overrides)
{
    durable_gateway_start(&fx, spool, overrides);
}

#define GW   (fx.gw.ports[0])
#define STUB (fx.stub.ports[0])

static void expect_clean(const struct soak_result *r)
{
    cr_expect_gt(r->acked, 0, "nothing was acknowledged: the run proved nothing");
    cr_expect_eq(r->lost, 0, "acknowledged but lost");
    cr_expect_eq(r->twice, 0, "stored twice");
    cr_expect_eq(r->out_of_order, 0, "a patient's submissions out of order");
}

Test(durable_crash, kill_9_at_random_moments_loses_and_doubles_nothing)
{
    struct soak_opts o = {.clients = 6, .keys = 1200, .kills = 20, .max_s = 60};
    struct soak_result r;

    start(NULL);
    ledger_config(STUB, "commit_then_reset=10");
    soak_run(&fx, &o, &r);
    expect_clean(&r);
    cr_expect_geq(r.kills, 15, "too few kills to mean anything: %d", r.kills);
    cr_expect_gt(r.arrivals, r.acked - r.lost, "no resend ever happened");
}

/* Each named crash point of the test build, hit several times while clients submit. */
static void crash_at(const char *point, const char *const *overrides)
{
    struct soak_opts o = {
        .clients = 4,
        .keys = 400,
        .crash_point = point,
        .crash_hits = 6,
        .max_s = 90,
    };
    struct soak_result r;

    start(overrides);
    soak_run(&fx, &o, &r);
    expect_clean(&r);
    cr_expect_eq(r.kills, o.crash_hits, "%s was hit %d times", point, r.kills);
}

Test(durable_crash, crash_before_the_accept_commit)
{
    crash_at("before_accept_commit", NULL);
}

Test(durable_crash, crash_after_the_accept_commit)
{
    crash_at("after_accept_commit", NULL);
}

Test(durable_crash, crash_before_the_answer)
{
    crash_at("before_reply", NULL);
}

Test(durable_crash, crash_after_sending_upstream)
{
    crash_at("after_upstream_send", NULL);
}

Test(durable_crash, crash_before_marking_delivered)
{
    crash_at("before_mark_delivered", NULL);
}

Test(durable_crash, crash_points_in_mode_always)
{
    const char *always[] = {"MODE=always", NULL};

    crash_at("before_accept_commit", always);
}

/* The negative control: acknowledging before the commit, then dying before it, must show up
 * as acknowledged-but-lost. If this passed with lost == 0, the harness would be blind. */
Test(durable_crash, negative_control_ack_before_commit_is_caught_losing)
{
    const char *always[] = {"MODE=always", NULL};
    struct soak_opts o = {
        .clients = 4,
        .keys = 400,
        .crash_point = "before_accept_commit",
        .crash_hits = 3,
        .ack_before_commit = true,
        .max_s = 60,
    };
    struct soak_result r;

    start(always);
    soak_run(&fx, &o, &r);
    cr_expect_gt(r.lost, 0, "the harness did not see the loss it was shown");
}

Test(durable_crash, an_fsync_error_stops_accepting_and_the_process_exits)
{
    const char *env[] = {"TRACEGATE_TEST_FAIL_FSYNC_AT=6", NULL};
    char key[32], acked[64][32];
    int n_acked = 0, refused = 0, gone = 0;

    start(NULL); /* a first start makes the spool; the test build then finds it made */
    cr_assert_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0);
    cr_assert_eq(gateway_start_hooks(&fx.gw, fx.conf_path, env), 0, "%s", fx.gw.log_path);
    for (int i = 0; i < 60 && gone == 0; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-fsync-%d", i);
        if (submit(GW, key, "p1", "{\"answers\":[1]}", 5000, &r) != 0) {
            gone = 1; /* the process went */
        } else if (r.status == 201 || r.status == 202) {
            snprintf(acked[n_acked++], sizeof(acked[0]), "%s", key);
        } else {
            cr_expect_eq(r.status, 503, "%s: %s", key, r.body);
            refused++;
        }
        http_resp_free(&r);
    }
    cr_expect_gt(refused, 0, "the failed fsync must answer 503, never 202");
    int st = proc_wait(&fx.gw, 15000);
    cr_expect_eq(st, 1, "after a failed fsync the process exits 1: %s", fx.gw.log_path);
    const char *failed[] = {"\"event\":\"spool.failed\"", NULL};
    cr_expect_eq(proc_log_count(&fx.gw, failed), 1);
    cr_assert_eq(gateway_start(&fx.gw, fx.conf_path, NULL), 0, "%s", fx.gw.log_path);
    cr_assert(wait_drained(GW, 30000));
    json_t *l = ledger_get(STUB);
    for (int i = 0; i < n_acked; i++) {
        cr_expect_eq(ledger_stored(l, acked[i]), 1, "%s", acked[i]);
    }
    json_decref(l);
}

Test(durable_crash, a_full_disk_gives_503_and_recovers_when_deliveries_free_room)
{
    const char *over[] = {"MIN_FREE_BYTES=2097152", NULL};
    char body[16384], key[32];
    int accepted = 0, refused = 0;
    struct http_resp r;

    if (mount("tmpfs", spool, "tmpfs", 0, "size=8m,mode=0700") != 0) {
        cr_skip_test("cannot mount a small tmpfs here (errno %d): the quota test covers 503",
                     errno);
    }
    mounted = true;
    /* {"answers":"000...0"}: a big body, valid JSON for the ledger */
    snprintf(body, sizeof(body), "{\"answers\":\"%0*d\"}", (int)sizeof(body) - 20, 0);
    start(over);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 2000 && refused < 3; i++) {
        snprintf(key, sizeof(key), "k-disk-%d", i);
        cr_assert_eq(submit(GW, key, NULL, body, 0, &r), 0);
        cr_assert(r.status == 202 || r.status == 503, "%ld: %s", r.status, r.body);
        accepted += r.status == 202;
        refused += r.status == 503;
        http_resp_free(&r);
    }
    cr_assert_geq(refused, 1, "the disk never filled (%d accepted)", accepted);
    cr_assert_eq(http_do(GW, "GET", "/readyz", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 503, "%s", r.body);
    http_resp_free(&r);
    ledger_config(STUB, "down=0");
    cr_assert(wait_ledger_stored(STUB, accepted, 60000));
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        cr_assert_eq(submit(GW, "k-disk-after", NULL, body, 0, &r), 0);
        back = r.status == 201;
        http_resp_free(&r);
        usleep(100000);
    }
    cr_expect(back, "still refusing once the backlog was delivered");
    json_t *l = ledger_get(STUB);
    cr_expect_eq(json_integer_value(json_object_get(l, "stored")), accepted + 1);
    json_decref(l);
}

/* `make soak`: the long run (TG_SOAK=long). */
Test(durable_crash, long_kill_9_soak, .timeout = 3600)
{
    /* The test's process has no other thread yet. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *mode = getenv("TG_SOAK");
    struct soak_opts o = {.clients = 16, .keys = 4000, .kills = 200, .max_s = 1800};
    struct soak_result r;

    if (mode == NULL || strcmp(mode, "long") != 0) {
        cr_skip_test("the long soak runs with TG_SOAK=long (make soak)");
    }
    start(NULL);
    ledger_config(STUB, "commit_then_reset=10");
    soak_run(&fx, &o, &r);
    expect_clean(&r);
}
