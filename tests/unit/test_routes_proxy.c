/* Unit tests for tg_proxy_target (routes/proxy.c): the upstream request-target built from the
 * upstream's base path, the route (upstream_path, strip_prefix) and the client's query. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/req.h"
#include "routes/proxy.h"
#include "routes/table.h"
#include "tests/support/unit/tmpconf.h"

static struct tg_conf *conf;

static void setup(void)
{
    char err[TG_CONF_ERR_MAX] = "";
    const char *text =
        "{\"upstreams\": {\"a\": {\"url\": \"http://127.0.0.1:1\"},"
        " \"b\": {\"url\": \"http://127.0.0.1:2/base\"}},\n"
        "\"routes\": [\n"
        "{\"method\": \"GET\", \"path\": \"/plain/{id}\", \"upstream\": \"a\"},\n"
        "{\"method\": \"GET\", \"path\": \"/based/{id}\", \"upstream\": \"b\"},\n"
        "{\"method\": \"GET\", \"path\": \"/t/{id}/{v}\", \"upstream\": \"b\","
        " \"upstream_path\": \"/x/{v}/{id}.json\"},\n"
        "{\"method\": \"GET\", \"path\": \"/s/*\", \"upstream\": \"b\", \"strip_prefix\": true},\n"
        "{\"method\": \"GET\", \"path\": \"/k/*\", \"upstream\": \"a\"}\n"
        "]}";

    cr_assert(
        eq(int,
           tg_conf_load(tmpconf_write("proxy", text), tg_route_table_load, &conf, err, sizeof(err)),
           TG_OK),
        "%s", err);
}

static void teardown(void)
{
    tg_conf_unref(conf);
    conf = NULL;
    tmpconf_remove();
}

TestSuite(proxy_target, .init = setup, .fini = teardown, .timeout = 10);

/* The target built for the raw request-target t into a buffer of cap bytes; -1 as returned. */
static long target(const char *t, char *out, size_t cap)
{
    char raw[512];
    struct tg_req req;
    struct tg_route_match m;
    const char *q = strchr(t, '?');
    long n;

    snprintf(raw, sizeof(raw), "%s", t);
    tg_req_init(&req);
    req.target = raw;
    req.target_len = strlen(raw);
    req.path_len = q == NULL ? req.target_len : (size_t)(q - t);
    cr_assert(eq(int, tg_route_table_match(conf->routes, "GET", raw, req.path_len, &m), TG_OK),
              "no route for %s", t);
    req.policy = &m.route->policy;
    req.match = &m;
    n = tg_proxy_target(&req, out, cap);
    req.target = NULL;
    tg_req_cleanup(&req);
    return n;
}

static void expect(const char *t, const char *want)
{
    char out[256];
    long n = target(t, out, sizeof(out));

    cr_assert(eq(long, n, (long)strlen(want)), "%s gave %ld", t, n);
    cr_assert(eq(str, out, (char *)want), "for %s", t);
}

Test(proxy_target, client_path_and_query_as_received)
{
    expect("/plain/p%2F1?a=1&b=%20", "/plain/p%2F1?a=1&b=%20");
}

Test(proxy_target, base_path_goes_first)
{
    expect("/based/7?x", "/base/based/7?x");
}

Test(proxy_target, upstream_path_takes_the_params)
{
    expect("/t/42/v%C3%BC?q=1", "/base/x/v%C3%BC/42.json?q=1");
}

Test(proxy_target, strip_prefix_keeps_the_rest)
{
    expect("/s/a/b?c", "/base/a/b?c");
    expect("/s/", "/base/");
    expect("/s", "/base/");
}

Test(proxy_target, prefix_without_strip_forwards_all)
{
    expect("/k/a/b", "/k/a/b");
}

Test(proxy_target, too_small_is_refused_at_the_edge)
{
    const char *want = "/base/x/v/42.json?q=1";
    char out[64];

    cr_assert(eq(long, target("/t/42/v?q=1", out, strlen(want) + 1), (long)strlen(want)));
    cr_assert(eq(str, out, (char *)want));
    cr_assert(eq(long, target("/t/42/v?q=1", out, strlen(want)), -1));
}
