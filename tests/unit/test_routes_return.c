/* Unit tests for routes/return.c: a fixed answer from the conf (status, body, headers), and the
 * conf errors that keep a wrong one from loading. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/handler.h"
#include "gateway/req.h"
#include "routes/table.h"
#include "tests/support/unit/tmpconf.h"

static struct tg_conf *conf;
static struct tg_req req;

static void teardown(void)
{
    tg_req_cleanup(&req);
    tg_conf_unref(conf);
    conf = NULL;
    tmpconf_remove();
}

TestSuite(return_route, .fini = teardown, .timeout = 10);

/* Loads one route whose "return" is spec; rc and err as tg_conf_load left them. */
static int load(const char *spec, char *err, size_t errlen)
{
    char text[4096];

    snprintf(text, sizeof(text),
             "{\"routes\": [{\"method\": \"GET\", \"path\": \"/m\",\n\"return\": %s}]}", spec);
    conf = NULL;
    return tg_conf_load(tmpconf_write("return", text), tg_route_table_load, &conf, err, errlen);
}

/* Serves GET /m on the loaded route into req. */
static void serve(const char *spec)
{
    char err[TG_CONF_ERR_MAX] = "";
    const struct tg_route *r;

    cr_assert(eq(int, load(spec, err, sizeof(err)), TG_OK), "%s", err);
    r = tg_route_table_at(conf->routes, 0);
    tg_req_init(&req);
    req.policy = &r->policy;
    cr_assert(eq(int, r->policy.handler->serve(&req), TG_MW_DONE));
}

static void expect_err(const char *spec, const char *want)
{
    char err[TG_CONF_ERR_MAX] = "";

    cr_assert(eq(int, load(spec, err, sizeof(err)), TG_EINVAL), "%s loaded", spec);
    cr_assert(not(zero(ptr, strstr(err, want))), "got: %s", err);
    tmpconf_remove();
}

Test(return_route, json_body_status_and_headers)
{
    serve("{\"status\": 503, \"body\": {\"error\": \"maintenance\", \"until\": 0.1},"
          " \"headers\": {\"Retry-After\": \"600\"}}");
    cr_assert(eq(int, req.resp.status, 503));
    cr_assert(eq(str, req.resp.body, "{\"error\":\"maintenance\",\"until\":0.1}"));
    cr_assert(eq(sz, req.resp.body_len, strlen(req.resp.body)));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Retry-After"), "600"));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Content-Type"), "application/json"));
}

Test(return_route, string_body_is_text)
{
    serve("{\"status\": 410, \"body\": \"gone: use /v2\"}");
    cr_assert(eq(int, req.resp.status, 410));
    cr_assert(eq(str, req.resp.body, "gone: use /v2"));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Content-Type"),
                 "text/plain; charset=utf-8"));
}

Test(return_route, headers_may_set_the_content_type)
{
    serve("{\"body\": \"<p>down</p>\", \"headers\": {\"content-type\": \"text/html\"}}");
    cr_assert(eq(int, req.resp.status, 200));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Content-Type"), "text/html"));
}

Test(return_route, redirect_without_body)
{
    serve("{\"status\": 308, \"headers\": {\"Location\": \"/v2/m\"}}");
    cr_assert(eq(int, req.resp.status, 308));
    cr_assert(zero(ptr, req.resp.body));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Location"), "/v2/m"));
    cr_assert(zero(ptr, (void *)tg_resp_header_get(&req.resp, "Content-Type")));
}

Test(return_route, status_range_both_sides)
{
    serve("{\"status\": 200}");
    tg_req_cleanup(&req);
    tg_conf_unref(conf);
    serve("{\"status\": 599}");
    tg_req_cleanup(&req);
    tg_conf_unref(conf);
    conf = NULL;
    expect_err("{\"status\": 199}",
               "expected an integer in 200..599, got 199 (at routes[0].return.status)");
    expect_err("{\"status\": 600}", "expected an integer in 200..599, got 600");
}

Test(return_route, bad_specs_are_refused)
{
    expect_err("\"down\"", "expected an object, got a string (at routes[0].return)");
    expect_err("{\"stauts\": 503}",
               "unknown key \"stauts\", did you mean \"status\"? (at routes[0].return.stauts)");
    expect_err("{\"status\": 204, \"body\": {}}", "status 204 has no body");
    expect_err("{\"headers\": {\"Content-Length\": \"3\"}}", "bad header name \"Content-Length\"");
    expect_err("{\"headers\": {\"Bad Name\": \"x\"}}", "bad header name \"Bad Name\"");
    expect_err("{\"headers\": {\"X-A\": \"a\\r\\nX-B: b\"}}",
               "expected a string without control characters");
    expect_err("{\"headers\": {\"X-A\": 1}}", "expected a string without control characters");
}

Test(return_route, other_kinds_keys_are_refused)
{
    char err[TG_CONF_ERR_MAX] = "";

    conf = NULL;
    cr_assert(eq(
        int,
        tg_conf_load(tmpconf_write("return", "{\"routes\": [{\"method\": \"GET\", \"path\": \"/m\","
                                             " \"return\": {}, \"strip_prefix\": true}]}"),
                     tg_route_table_load, &conf, err, sizeof(err)),
        TG_EINVAL));
    cr_assert(not(zero(ptr, strstr(err, "\"strip_prefix\" is only for routes with \"upstream\""))),
              "%s", err);
}
