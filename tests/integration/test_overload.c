/* upstreams.NAME.max_in_flight: beyond it a worker answers 503 with Retry-After at once. */
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
    fixture_gateway_start(&fx, "overload.json", NULL, 0);
}

static void teardown(void)
{
    cr_expect_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0, "log %s", fx.gw.log_path);
    proc_stop(&fx.stub, SIGTERM, 5000);
    unlink(fx.conf_path);
}

TestSuite(overload, .init = setup, .fini = teardown, .timeout = 30);

Test(overload, third_call_is_shed_with_503_and_retry_after)
{
    const char *slow = "GET /s/x?delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n";
    int a = tcp_connect(fx.gw.ports[0]);
    int b = tcp_connect(fx.gw.ports[0]);
    struct http_resp r;
    char ra[32];
    char *resp;
    size_t len;

    cr_assert(a >= 0 && b >= 0);
    cr_assert_eq(tcp_send(a, slow, strlen(slow)), 0);
    cr_assert_eq(tcp_send(b, slow, strlen(slow)), 0);
    usleep(200000);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/s/fast", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_lt(r.total_ms, 300.0, "shed, not queued: %.1f ms", r.total_ms);
    cr_expect_not_null(http_header(&r, "Retry-After", ra, sizeof(ra)));
    cr_expect(strstr(r.body, "\"trace_id\"") != NULL, "%s", r.body);
    http_resp_free(&r);
    /* The two slow calls are unharmed, and once they are done a new call goes through. */
    resp = tcp_read_all(a, 2000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    free(resp);
    resp = tcp_read_all(b, 2000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    free(resp);
    close(a);
    close(b);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/s/fast", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
}
