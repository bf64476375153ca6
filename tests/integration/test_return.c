/* Routes with "return": a fixed answer from the conf, with the trace headers every answer gets,
 * for any method the route allows, and a body sent to it is read and dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"

static struct fixture fx;

static void setup(void)
{
    fixture_gateway_start(&fx, "return.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(return_route, .init = setup, .fini = teardown, .timeout = 30);

Test(return_route, maintenance_answer_with_trace_headers)
{
    const char *hdrs[] = {"X-Trace-Id: ret-1", NULL};
    struct http_resp r;
    char buf[128];

    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/v1/submit", hdrs, "{\"a\":1}", 7, 0, &r), 0);
    cr_expect_eq(r.status, 503);
    cr_expect_str_eq(r.body, "{\"error\":\"maintenance\",\"until\":\"06:00\"}");
    cr_expect_str_eq(http_header(&r, "Retry-After", buf, sizeof(buf)), "600");
    cr_expect_str_eq(http_header(&r, "Content-Type", buf, sizeof(buf)), "application/json");
    cr_expect_str_eq(http_header(&r, "X-Trace-Id", buf, sizeof(buf)), "ret-1");
    cr_expect_not_null(http_header(&r, "traceparent", buf, sizeof(buf)));
    http_resp_free(&r);
}

Test(return_route, redirect_and_text)
{
    struct http_resp r;
    char buf[128];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/old", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 308);
    cr_expect_str_eq(http_header(&r, "Location", buf, sizeof(buf)), "/new");
    cr_expect_eq(r.body_len, 0);
    http_resp_free(&r);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/note", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "moved to /v2");
    cr_expect_str_eq(http_header(&r, "Content-Type", buf, sizeof(buf)),
                     "text/plain; charset=utf-8");
    http_resp_free(&r);
}
