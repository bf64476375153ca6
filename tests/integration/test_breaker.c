/* The breaker through the real binary: when most calls to an upstream fail, it is marked
 * unstable and most requests are answered 503 at once, without a call; a call still goes now
 * and then, and once they succeed again the upstream recovers. */
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
    targets_gateway_start(&tg, 2, false, "breaker.json", &gw, conf_path, sizeof(conf_path));
}

static void teardown(void)
{
    targets_gateway_stop(&tg, &gw, conf_path);
}

TestSuite(breaker, .init = setup, .fini = teardown, .timeout = 60);

Test(breaker, failing_calls_open_it_and_successes_close_it)
{
    const char *unstable[] = {"\"event\":\"upstream.unstable\"", "\"reason\":\"breaker open\"",
                              NULL};
    const char *recovered[] = {"\"event\":\"upstream.recovered\"", NULL};
    int asked = 0, refused = 0, ok_in_a_row = 0;
    uint64_t end;
    char ra[16];

    /* 500 is not retried: each request is one failed call, until the breaker refuses */
    targets_behave(&tg, 0, "status=500");
    targets_behave(&tg, 1, "status=500");
    end = now_us() + 1500000;
    while (now_us() < end) {
        struct http_resp r;
        cr_assert_eq(http_do(gw.ports[0], "GET", "/p/x", NULL, NULL, 0, 5000, &r), 0);
        asked++;
        if (r.status == 503) {
            refused++;
            cr_expect(strstr(r.body, "\"error\":\"upstream unstable\"") != NULL, "%s", r.body);
            cr_expect_str_eq(http_header(&r, "Retry-After", ra, sizeof(ra)), "1");
        } else {
            cr_expect_eq(r.status, 500, "%s", r.body);
        }
        http_resp_free(&r);
    }
    cr_expect_eq(proc_log_count(&gw, unstable), 1, "%s", gw.log_path);
    /* (requests - 5 - 1.5 accepts) / (requests + 1): well over half refused within a second */
    cr_expect_gt(refused * 2, asked, "%d of %d refused", refused, asked);
    cr_expect_eq(targets_count_all(&tg, "/x"), asked - refused, "the refused made no call");

    targets_behave(&tg, 0, "");
    targets_behave(&tg, 1, "");
    /* the probe and the calls let through succeed: accepts outweigh the failures, it closes */
    end = now_us() + 10000000;
    for (int k = 0; now_us() < end && proc_log_count(&gw, recovered) == 0; k++) {
        for (int j = 0; j < 20; j++) {
            struct http_resp r;
            cr_assert_eq(http_do(gw.ports[0], "GET", "/p/y", NULL, NULL, 0, 5000, &r), 0);
            http_resp_free(&r);
        }
    }
    cr_expect_eq(proc_log_count(&gw, recovered), 1, "not recovered after 10 s: %s", gw.log_path);
    for (int k = 0; k < 20; k++) {
        struct http_resp r;
        cr_assert_eq(http_do(gw.ports[0], "GET", "/p/z", NULL, NULL, 0, 5000, &r), 0);
        ok_in_a_row += r.status == 200;
        http_resp_free(&r);
    }
    cr_expect_eq(ok_in_a_row, 20, "refused after it recovered");
}
