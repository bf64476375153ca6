/* Unit tests for routes/table.c: loading the conf's "routes" array (every error with its
 * FILE:LINE:COL and JSON path) and matching requests (precedence, parameters, 404 vs 405).
 * Route confs start with two fixed lines (upstreams "a" and "b", then "routes": [), so the
 * first route line is line 3; most tests put the value under test at the start of a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "routes/fanout.h"
#include "routes/local.h"
#include "routes/proxy.h"
#include "routes/table.h"

static const struct tg_proxy_conf *proxy_of(const struct tg_route *r)
{
    return r->policy.handler_conf;
}

static const struct tg_fanout_conf *fanout_of(const struct tg_route *r)
{
    return r->policy.handler_conf;
}

static const struct tg_local_conf *local_of(const struct tg_route *r)
{
    return r->policy.handler_conf;
}

#include "tests/support/unit/tmpconf.h"

#define CONF_HEAD                                                                  \
    "{\"upstreams\": {\"a\": {\"url\": \"http://127.0.0.1:1\"}, \"b\": {\"url\": " \
    "\"http://127.0.0.1:2/base\"}},\n"                                             \
    "\"routes\": [\n"
#define CONF_TAIL "\n]}"

/* A proxy route to upstream "a". */
#define PROXY(name, method, path)                                                                 \
    "{\"name\": \"" name "\", \"method\": \"" method "\", \"path\": \"" path "\", \"upstream\": " \
    "\"a\"}"

static const char *write_conf(const char *text)
{
    return tmpconf_write("routes", text);
}

static void teardown(void)
{
    tmpconf_remove();
}

TestSuite(route_table, .fini = teardown, .timeout = 10);

/* Loads CONF_HEAD + routes + CONF_TAIL; rc and err as tg_conf_load left them. */
static int load(const char *routes, struct tg_conf **conf, char *err, size_t errlen)
{
    static char text[65536];

    snprintf(text, sizeof(text), "%s%s%s", CONF_HEAD, routes, CONF_TAIL);
    *conf = NULL;
    return tg_conf_load(write_conf(text), tg_route_table_load, conf, err, errlen);
}

static struct tg_conf *load_ok(const char *routes)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf;

    cr_assert(eq(int, load(routes, &conf, err, sizeof(err)), TG_OK), "error: %s", err);
    return conf;
}

/* The routes must fail to load with "<file>:<want>". */
static void expect_err(const char *routes, const char *want)
{
    char err[TG_CONF_ERR_MAX] = "", full[TG_CONF_ERR_MAX + 600];
    struct tg_conf *conf;

    int rc = load(routes, &conf, err, sizeof(err));

    cr_assert(rc == TG_EINVAL && conf == NULL, "rc %d for %s", rc, routes);
    snprintf(full, sizeof(full), "%s:%s", tmpconf_path(), want);
    cr_assert(eq(str, err, full));
    teardown();
}

static int match(const struct tg_conf *conf, const char *method, const char *path,
                 struct tg_route_match *m)
{
    return tg_route_table_match(conf->routes, method, path, strlen(path), m);
}

/* With routes ra and rb declared in both orders, method+path goes to the route named want. */
static void expect_winner(const char *ra, const char *rb, const char *method, const char *path,
                          const char *want)
{
    char routes[4096];

    for (int order = 0; order < 2; order++) {
        struct tg_route_match m;
        struct tg_conf *conf;
        snprintf(routes, sizeof(routes), "%s,\n%s", order ? rb : ra, order ? ra : rb);
        conf = load_ok(routes);
        cr_assert(match(conf, method, path, &m) == TG_OK && strcmp(m.route->name, want) == 0,
                  "%s %s, order %d: got %s", method, path, order,
                  m.route != NULL ? m.route->name : "no route");
        tg_conf_unref(conf);
        teardown();
    }
}

/* ---- loading ---------------------------------------------------------------------------- */

Test(route_table, defaults)
{
    struct tg_conf *conf =
        load_ok("{\"method\": \"GET\", \"path\": \"/x/{id}\", \"upstream\": "
                "\"b\"},\n"
                "{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [{\"name\": "
                "\"n\", \"upstream\": \"a\", \"path\": \"/p\"}]},\n"
                "{\"method\": \"GET\", \"path\": \"/h\", \"local\": \"health\"}");
    const struct tg_route *r = tg_route_table_at(conf->routes, 0);

    cr_assert(eq(sz, tg_route_table_count(conf->routes), 3));
    cr_assert(zero(ptr, (void *)tg_route_table_at(conf->routes, 3)));
    cr_assert(eq(str, r->name, "GET /x/{id}"));
    cr_assert(eq(str, r->method, "GET"));
    cr_assert(eq(str, r->path, "/x/{id}"));
    cr_assert(eq(ptr, (void *)r->policy.handler, (void *)&tg_handler_proxy));
    cr_assert(eq(ptr, (void *)proxy_of(r)->upstream, &conf->upstreams[1]));
    cr_assert(zero(ptr, proxy_of(r)->upstream_path));
    cr_assert(not(proxy_of(r)->strip_prefix));
    cr_assert(eq(u32, r->policy.timeout_ms, 5000));
    cr_assert(eq(u32, proxy_of(r)->upstream_timeout_ms, 0));
    cr_assert(eq(sz, r->policy.max_body_bytes, conf->max_body_bytes));
    cr_assert(not(r->policy.accept_client_timeout));
    cr_assert(r->policy.cancel_on_disconnect);
    cr_assert(not(r->prefix));
    cr_assert(eq(sz, r->n_segs, 2));
    cr_assert(eq(int, r->segs[1].kind, TG_SEG_PARAM));
    cr_assert(eq(str, r->segs[1].text, "id"));
    r = tg_route_table_at(conf->routes, 1);
    cr_assert(eq(ptr, (void *)r->policy.handler, (void *)&tg_handler_fanout));
    cr_assert(eq(sz, fanout_of(r)->max_merged_bytes, 4194304));
    cr_assert(eq(str, fanout_of(r)->backends[0].method, "GET"));
    cr_assert(fanout_of(r)->backends[0].required);
    cr_assert(eq(u32, fanout_of(r)->backends[0].timeout_ms, 0));
    cr_assert(eq(sz, fanout_of(r)->backends[0].max_body_bytes, 1048576));
    cr_assert(eq(ptr, (void *)fanout_of(r)->backends[0].upstream, &conf->upstreams[0]));
    r = tg_route_table_at(conf->routes, 2);
    cr_assert(eq(ptr, (void *)r->policy.handler, (void *)&tg_handler_local));
    cr_assert(eq(str, (char *)local_of(r)->what, "health"));
    tg_conf_unref(conf);
}

Test(route_table, every_route_key)
{
    struct tg_conf *conf = load_ok(
        "{\"name\": \"p\", \"method\": \"PUT\", \"path\": \"/p/{id}\", \"upstream\": \"a\","
        " \"upstream_path\": \"/q/{id}.json\", \"timeout_ms\": 7, \"upstream_timeout_ms\": 6,"
        " \"max_body_bytes\": 5, \"accept_client_timeout\": true, \"cancel_on_disconnect\": "
        "false},\n"
        "{\"name\": \"s\", \"method\": \"*\", \"path\": \"/s/*\", \"upstream\": \"a\","
        " \"strip_prefix\": true},\n"
        "{\"name\": \"f\", \"method\": \"GET\", \"path\": \"/f/{id}\", \"max_merged_bytes\": 9,"
        " \"backends\": [{\"name\": \"x\", \"upstream\": \"b\", \"path\": \"/x/{id}\", \"method\":"
        " \"POST\", \"required\": false, \"timeout_ms\": 3, \"max_body_bytes\": 4}]}");
    const struct tg_route *r = tg_route_table_at(conf->routes, 0);

    cr_assert(eq(str, proxy_of(r)->upstream_path, "/q/{id}.json"));
    cr_assert(eq(u32, r->policy.timeout_ms, 7));
    cr_assert(eq(u32, proxy_of(r)->upstream_timeout_ms, 6));
    cr_assert(eq(sz, r->policy.max_body_bytes, 5));
    cr_assert(r->policy.accept_client_timeout);
    cr_assert(not(r->policy.cancel_on_disconnect));
    r = tg_route_table_at(conf->routes, 1);
    cr_assert(proxy_of(r)->strip_prefix);
    cr_assert(r->prefix);
    cr_assert(eq(sz, r->n_segs, 1));
    r = tg_route_table_at(conf->routes, 2);
    cr_assert(eq(sz, fanout_of(r)->max_merged_bytes, 9));
    cr_assert(eq(str, fanout_of(r)->backends[0].name, "x"));
    cr_assert(eq(str, fanout_of(r)->backends[0].path, "/x/{id}"));
    cr_assert(eq(str, fanout_of(r)->backends[0].method, "POST"));
    cr_assert(not(fanout_of(r)->backends[0].required));
    cr_assert(eq(u32, fanout_of(r)->backends[0].timeout_ms, 3));
    cr_assert(eq(sz, fanout_of(r)->backends[0].max_body_bytes, 4));
    tg_conf_unref(conf);
}

Test(route_table, route_body_limit_defaults_to_limits)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;

    cr_assert(eq(int,
                 tg_conf_load(write_conf("{\"limits\": {\"max_body_bytes\": 77}, \"routes\": "
                                         "[{\"method\": \"GET\", \"path\": \"/\", \"local\": "
                                         "\"ready\"}]}"),
                              tg_route_table_load, &conf, err, sizeof(err)),
                 TG_OK));
    cr_assert(eq(sz, tg_route_table_at(conf->routes, 0)->policy.max_body_bytes, 77));
    tg_conf_unref(conf);
}

Test(route_table, unknown_key_in_route)
{
    expect_err("{\"method\": \"GET\", \"path\": \"/a\",\n\"uptream\": \"a\"}",
               "4:1: unknown key \"uptream\", did you mean \"upstream\"? (at routes[0].uptream)");
}

Test(route_table, unknown_key_in_backend)
{
    expect_err(
        PROXY("x", "GET", "/x") ",\n"
                                "{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [\n"
                                "  {\"name\": \"n\", \"upstream\": \"a\", \"path\": \"/p\",\n"
                                "   \"requird\": true}]}",
        "6:4: unknown key \"requird\", did you mean \"required\"? "
        "(at routes[1].backends[0].requird)");
}

Test(route_table, wrong_types)
{
    expect_err(
        "{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"timeout_ms\":\n\"5\"}",
        "4:1: expected an integer in 1..3600000, got a string (at routes[0].timeout_ms)");
    expect_err(
        "{\"method\": \"GET\", \"path\": \"/a/*\", \"upstream\": \"a\", \"strip_prefix\":\n1}",
        "4:1: expected true or false, got an integer (at routes[0].strip_prefix)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"name\":\n[]}",
               "4:1: expected a string, got an array (at routes[0].name)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"backends\":\n{}}",
               "4:1: expected an array, got an object (at routes[0].backends)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"backends\": [\n\"a\"]}",
               "4:1: expected an object, got a string (at routes[0].backends[0])");
    expect_err("\n7", "4:1: expected an object, got an integer (at routes[0])");
}

Test(route_table, routes_must_be_an_array)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;
    const char *file = write_conf("{\n\"routes\": {}}");
    char want[1024];

    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_EINVAL));
    snprintf(want, sizeof(want), "%s:2:11: expected an array, got an object (at routes)", file);
    cr_assert(eq(str, err, want));
}

Test(route_table, no_routes_key_gives_an_empty_table)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;
    struct tg_route_match m;

    cr_assert(eq(int, tg_conf_load(write_conf("{}"), tg_route_table_load, &conf, err, sizeof(err)),
                 TG_OK));
    cr_assert(eq(sz, tg_route_table_count(conf->routes), 0));
    cr_assert(eq(int, match(conf, "GET", "/", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
}

Test(route_table, required_keys)
{
    expect_err("\n{\"path\": \"/a\", \"upstream\": \"a\"}",
               "4:1: missing required key \"method\" (at routes[0])");
    expect_err("\n{\"method\": \"GET\", \"upstream\": \"a\"}",
               "4:1: missing required key \"path\" (at routes[0])");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [\n"
               "{\"name\": \"n\", \"path\": \"/p\"}]}",
               "4:1: missing required key \"upstream\" (at routes[0].backends[0])");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [\n"
               "{\"name\": \"n\", \"upstream\": \"a\"}]}",
               "4:1: missing required key \"path\" (at routes[0].backends[0])");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [\n"
               "{\"upstream\": \"a\", \"path\": \"/p\"}]}",
               "4:1: missing required key \"name\" (at routes[0].backends[0])");
}

Test(route_table, bad_methods)
{
    expect_err("{\"path\": \"/a\", \"upstream\": \"a\", \"method\":\n\"get\"}",
               "4:1: bad method \"get\": expected an upper-case HTTP token or \"*\" "
               "(at routes[0].method)");
    expect_err("{\"path\": \"/a\", \"upstream\": \"a\", \"method\":\n\"GE T\"}",
               "4:1: bad method \"GE T\": expected an upper-case HTTP token or \"*\" "
               "(at routes[0].method)");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [{\"name\": \"n\", "
               "\"upstream\": \"a\", \"path\": \"/p\", \"method\":\n\"*\"}]}",
               "4:1: bad method \"*\": expected an upper-case HTTP token "
               "(at routes[0].backends[0].method)");
    tg_conf_unref(load_ok(PROXY("m", "M-SEARCH", "/a")));
}

Test(route_table, dangling_upstream)
{
    expect_err(PROXY("ok", "GET", "/ok") ",\n"
                                         "{\"method\": \"GET\", \"path\": \"/a\", \"upstream\":\n"
                                         "\"patinet\"}",
               "5:1: unknown upstream \"patinet\" (at routes[1].upstream)");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [{\"name\": \"n\", "
               "\"upstream\":\n\"c\", \"path\": \"/p\"}]}",
               "4:1: unknown upstream \"c\" (at routes[0].backends[0].upstream)");
}

Test(route_table, upstream_without_upstreams_section)
{
    char err[TG_CONF_ERR_MAX], want[1024];
    struct tg_conf *conf = NULL;
    const char *file = write_conf(
        "{\"routes\": [\n{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\"}]}");

    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_EINVAL));
    snprintf(want, sizeof(want),
             "%s:2:45: unknown upstream \"a\" (the conf has no \"upstreams\") "
             "(at routes[0].upstream)",
             file);
    cr_assert(eq(str, err, want));
}

Test(route_table, duplicate_routes)
{
    expect_err(PROXY("x", "GET", "/a/{x}") ",\n" PROXY("r2", "GET", "/b") ",\n"
                                                                          "{\"name\": \"y\", "
                                                                          "\"upstream\": \"b\", "
                                                                          "\"method\": \"GET\", "
                                                                          "\"path\":\n"
                                                                          "\"/a/{y}\"}",
               "6:1: duplicate route: same method and path pattern as routes[0] (\"x\") "
               "(at routes[2].path)");
    expect_err(PROXY("x", "*", "/a/*") ",\n"
                                       "{\"method\": \"*\", \"local\": \"health\", \"path\":\n"
                                       "\"/a/*\"}",
               "5:1: duplicate route: same method and path pattern as routes[0] (\"x\") "
               "(at routes[1].path)");
}

Test(route_table, same_path_other_method_or_shape_is_no_duplicate)
{
    struct tg_conf *conf =
        load_ok(PROXY("1", "GET", "/a/{x}") ",\n" PROXY("2", "*", "/a/{y}") ",\n" PROXY(
            "3", "HEAD",
            "/a/{z}") ",\n" PROXY("4", "GET",
                                  "/a/b") ",\n" PROXY("5", "GET",
                                                      "/a/*") ",\n" PROXY("6", "GET",
                                                                          "/a") ",\n" PROXY("7",
                                                                                            "POST",
                                                                                            "/a/"
                                                                                            "{x}"));

    cr_assert(eq(sz, tg_route_table_count(conf->routes), 7));
    tg_conf_unref(conf);
}

Test(route_table, duplicate_names)
{
    expect_err(PROXY("same", "GET", "/a") ",\n"
                                          "{\"method\": \"GET\", \"path\": \"/b\", \"upstream\": "
                                          "\"a\", \"name\":\n\"same\"}",
               "5:1: duplicate route name \"same\" (also routes[0]) (at routes[1].name)");
}

/* A fan-out route with n backends b0..b(n-1). */
static void fanout(char *buf, size_t cap, size_t n)
{
    size_t len =
        (size_t)snprintf(buf, cap, "{\"method\": \"GET\", \"path\": \"/f\", \"backends\":\n[");

    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"name\": \"b%zu\", \"upstream\": \"a\", \"path\": \"/p\"}",
                                i ? ", " : "", i);
    }
    snprintf(buf + len, cap - len, "]}");
}

Test(route_table, backends_limit_both_sides)
{
    char routes[8192];
    struct tg_conf *conf;

    fanout(routes, sizeof(routes), 16);
    conf = load_ok(routes);
    cr_assert(eq(sz, fanout_of(tg_route_table_at(conf->routes, 0))->n_backends, 16));
    tg_conf_unref(conf);
    teardown();
    fanout(routes, sizeof(routes), 17);
    expect_err(routes, "4:1: expected 1..16 backends, got 17 (at routes[0].backends)");
    fanout(routes, sizeof(routes), 1);
    tg_conf_unref(load_ok(routes));
    teardown();
    fanout(routes, sizeof(routes), 0);
    expect_err(routes, "4:1: expected 1..16 backends, got 0 (at routes[0].backends)");
}

Test(route_table, backend_names)
{
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [\n"
               "{\"name\": \"n\", \"upstream\": \"a\", \"path\": \"/p\"},\n"
               "{\"upstream\": \"b\", \"path\": \"/q\", \"name\": \"n\"}]}",
               "5:41: duplicate backend name \"n\" (also backends[0]) "
               "(at routes[0].backends[1].name)");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [{\"upstream\": \"a\", "
               "\"path\": \"/p\", \"name\":\n\"_errors\"}]}",
               "4:1: bad backend name \"_errors\": expected 1..64 characters of [A-Za-z0-9_-], "
               "not starting with '_' (reserved for \"_errors\") (at routes[0].backends[0].name)");
    expect_err("{\"method\": \"GET\", \"path\": \"/f\", \"backends\": [{\"upstream\": \"a\", "
               "\"path\": \"/p\", \"name\":\n\"a.b\"}]}",
               "4:1: bad backend name \"a.b\": expected 1..64 characters of [A-Za-z0-9_-], "
               "not starting with '_' (reserved for \"_errors\") (at routes[0].backends[0].name)");
}

Test(route_table, strip_prefix_rules)
{
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"strip_prefix\":\n"
               "true}",
               "4:1: strip_prefix needs a prefix route (a path ending in \"/*\") "
               "(at routes[0].strip_prefix)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a/*\", \"local\": \"health\",\n"
               "\"strip_prefix\": true}",
               "4:1: \"strip_prefix\" is only for routes with \"upstream\" "
               "(at routes[0].strip_prefix)");
    /* false says nothing to strip: fine anywhere a proxy is */
    tg_conf_unref(load_ok(
        "{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"strip_prefix\": false}"));
}

Test(route_table, upstream_path_rules)
{
    expect_err(
        "{\"method\": \"GET\", \"path\": \"/a/*\", \"upstream\": \"a\", \"upstream_path\":\n"
        "\"/b\"}",
        "4:1: upstream_path is only for exact routes (a prefix route forwards the client "
        "path, or with strip_prefix the part after the prefix) (at routes[0].upstream_path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/p/{id}\", \"upstream\": \"a\", "
               "\"upstream_path\":\n\"/q/{idd}\"}",
               "4:1: unknown parameter {idd} in upstream_path: the route path \"/p/{id}\" has no "
               "such parameter (at routes[0].upstream_path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/p\", \"backends\": [{\"name\": \"n\", "
               "\"upstream\": \"a\", \"path\":\n\"/x/{id}\"}]}",
               "4:1: unknown parameter {id} in path: the route path \"/p\" has no such parameter "
               "(at routes[0].backends[0].path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/p\", \"upstream\": \"a\", \"upstream_path\":\n"
               "\"q\"}",
               "4:1: bad upstream_path \"q\": must start with '/' (at routes[0].upstream_path)");
    expect_err(
        "{\"method\": \"GET\", \"path\": \"/p/{a}\", \"upstream\": \"a\", \"upstream_path\":\n"
        "\"/q/{a\"}",
        "4:1: bad upstream_path \"/q/{a\": expected {name}, name [A-Za-z_][A-Za-z0-9_]* "
        "(at routes[0].upstream_path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/p\", \"upstream\": \"a\", \"upstream_path\":\n"
               "\"/q?x=1\"}",
               "4:1: bad upstream_path \"/q?x=1\": character '?' is not allowed "
               "(at routes[0].upstream_path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/p\", \"upstream\": \"a\", \"upstream_path\":\n"
               "\"/q}\"}",
               "4:1: bad upstream_path \"/q}\": expected {name}, name [A-Za-z_][A-Za-z0-9_]* "
               "(at routes[0].upstream_path)");
}

Test(route_table, bad_path_patterns)
{
    static const struct {
        const char *path, *why;
    } bad[] = {
        {"submit", "must start with '/'"},
        {"/a//b", "empty segment"},
        {"//*", "empty segment"},
        {"/a/", "trailing '/' (drop it, or end the path with \\\"/*\\\" for a prefix)"},
        {"/a/./b", "\\\".\\\" and \\\"..\\\" segments are not allowed"},
        {"/a/..", "\\\".\\\" and \\\"..\\\" segments are not allowed"},
        {"/a/*/b", "'*' is only allowed as the final segment \\\"/*\\\""},
        {"/a*", "'*' is only allowed as the final segment \\\"/*\\\""},
        {"/a/**", "'*' is only allowed as the final segment \\\"/*\\\""},
        {"/{1x}", "a parameter is a whole segment {name}, name [A-Za-z_][A-Za-z0-9_]*"},
        {"/a{x}", "a parameter is a whole segment {name}, name [A-Za-z_][A-Za-z0-9_]*"},
        {"/{}", "a parameter is a whole segment {name}, name [A-Za-z_][A-Za-z0-9_]*"},
        {"/{x}/{x}", "parameter {x} appears twice"},
        {"/a b", "character ' ' is not allowed (RFC 3986 pchar only)"},
        {"/a?b", "character '?' is not allowed (RFC 3986 pchar only)"},
        {"/%zz", "character '%' is not allowed (RFC 3986 pchar only)"},
        {"/%4", "character '%' is not allowed (RFC 3986 pchar only)"},
    };
    char routes[512], want[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(routes, sizeof(routes),
                 "{\"method\": \"GET\", \"upstream\": \"a\", \"path\":\n"
                 "\"%s\"}",
                 bad[i].path);
        snprintf(want, sizeof(want), "4:1: bad path \"%s\": %s (at routes[0].path)", bad[i].path,
                 bad[i].why);
        /* the table holds JSON-escaped text for the message: unescape \" */
        for (char *q = strstr(want, "\\\""); q != NULL; q = strstr(q, "\\\"")) {
            memmove(q, q + 1, strlen(q));
            q++;
        }
        expect_err(routes, want);
    }
}

Test(route_table, good_path_patterns)
{
    struct tg_conf *conf = load_ok(PROXY("1", "GET", "/") ",\n" PROXY("2", "GET", "/*") ",\n" PROXY(
        "3", "GET",
        "/a/{x}/*") ",\n" PROXY("4", "GET",
                                "/~u/a-b_c.d/%20/:@!$&'()+,;=") ",\n" PROXY("5", "GET",
                                                                            "/{_a1}/..x"));
    const struct tg_route *r = tg_route_table_at(conf->routes, 0);

    cr_assert(eq(sz, r->n_segs, 1));
    cr_assert(eq(sz, r->segs[0].len, 0));
    r = tg_route_table_at(conf->routes, 1);
    cr_assert(eq(sz, r->n_segs, 0));
    cr_assert(r->prefix);
    r = tg_route_table_at(conf->routes, 2);
    cr_assert(eq(sz, r->n_segs, 2));
    cr_assert(r->prefix);
    tg_conf_unref(conf);
}

/* A GET route to path made of n segments: literals s0.. or parameters {p0}... */
static void long_route(char *buf, size_t cap, size_t n, bool params)
{
    size_t len =
        (size_t)snprintf(buf, cap, "{\"method\": \"GET\", \"upstream\": \"a\", \"path\":\n\"");

    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, cap - len, params ? "/{p%zu}" : "/s%zu", i);
    }
    snprintf(buf + len, cap - len, "\"}");
}

Test(route_table, params_and_segments_limits)
{
    char routes[1024], want[1024];
    struct tg_conf *conf;

    long_route(routes, sizeof(routes), 8, true);
    conf = load_ok(routes);
    cr_assert(eq(sz, tg_route_table_at(conf->routes, 0)->n_segs, 8));
    tg_conf_unref(conf);
    teardown();
    long_route(routes, sizeof(routes), 9, true);
    snprintf(want, sizeof(want), "4:1: bad path \"%s\": more than 8 parameters (at routes[0].path)",
             "/{p0}/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}");
    expect_err(routes, want);
    long_route(routes, sizeof(routes), 32, false);
    conf = load_ok(routes);
    cr_assert(eq(sz, tg_route_table_at(conf->routes, 0)->n_segs, 32));
    tg_conf_unref(conf);
    teardown();
    long_route(routes, sizeof(routes), 33, false);
    /* messages quote at most 64 bytes of the path */
    snprintf(want, sizeof(want),
             "4:1: bad path \"%.64s\"...: more than 32 segments (at routes[0].path)",
             strstr(routes, "/s0"));
    expect_err(routes, want);
}

Test(route_table, exactly_one_kind)
{
    expect_err("\n{\"method\": \"GET\", \"path\": \"/a\"}",
               "4:1: a route needs one of \"upstream\", \"backends\", \"local\", \"return\" or "
               "\"submissions\" (at routes[0])");
    expect_err(
        "{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\",\n\"local\": \"health\"}",
        "4:1: \"upstream\" and \"local\" exclude each other: a route has exactly one of "
        "\"upstream\", \"backends\", \"local\", \"return\" or \"submissions\" (at "
        "routes[0].local)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"backends\": [],\n"
               "\"local\": \"health\", \"upstream\": \"a\"}",
               "4:1: \"backends\" and \"local\" exclude each other: a route has exactly one "
               "of \"upstream\", \"backends\", \"local\", \"return\" or \"submissions\" (at "
               "routes[0].local)");
}

Test(route_table, keys_of_another_kind)
{
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"local\": \"health\",\n"
               "\"upstream_path\": \"/x\"}",
               "4:1: \"upstream_path\" is only for routes with \"upstream\" "
               "(at routes[0].upstream_path)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\",\n"
               "\"max_merged_bytes\": 1}",
               "4:1: \"max_merged_bytes\" is only for routes with \"backends\" "
               "(at routes[0].max_merged_bytes)");
}

Test(route_table, local_values)
{
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"local\":\n\"stats\"}",
               "4:1: unknown local handler \"stats\": expected \"health\", \"ready\", "
               "\"metrics\" or \"info\" (at routes[0].local)");
    tg_conf_unref(load_ok("{\"method\": \"GET\", \"path\": \"/a\", \"local\": \"metrics\"}"));
}

Test(route_table, route_ranges_both_sides)
{
    struct tg_conf *conf = load_ok(
        "{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"timeout_ms\": 3600000,"
        " \"upstream_timeout_ms\": 3600000, \"max_body_bytes\": 1073741824},\n"
        "{\"method\": \"GET\", \"path\": \"/b\", \"upstream\": \"a\", \"timeout_ms\": 1,"
        " \"max_body_bytes\": 0}");

    cr_assert(eq(u32, tg_route_table_at(conf->routes, 0)->policy.timeout_ms, 3600000));
    cr_assert(eq(sz, tg_route_table_at(conf->routes, 0)->policy.max_body_bytes, 1073741824));
    cr_assert(eq(u32, tg_route_table_at(conf->routes, 1)->policy.timeout_ms, 1));
    cr_assert(eq(sz, tg_route_table_at(conf->routes, 1)->policy.max_body_bytes, 0));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"timeout_ms\":\n0}",
               "4:1: expected an integer in 1..3600000, got 0 (at routes[0].timeout_ms)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"timeout_ms\":\n"
               "3600001}",
               "4:1: expected an integer in 1..3600000, got 3600001 (at routes[0].timeout_ms)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"max_body_bytes\":\n"
               "1073741825}",
               "4:1: expected an integer in 0..1073741824, got 1073741825 "
               "(at routes[0].max_body_bytes)");
}

/* Streaming on proxy routes: on by default, the idle timeout from limits unless the route says. */
Test(route_table, stream_keys)
{
    struct tg_conf *conf =
        load_ok("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\"},\n"
                "{\"method\": \"GET\", \"path\": \"/b\", \"upstream\": \"a\", \"stream\": false,"
                " \"stream_idle_timeout_ms\": 3600000}");

    cr_assert(proxy_of(tg_route_table_at(conf->routes, 0))->stream);
    cr_assert(eq(u32, proxy_of(tg_route_table_at(conf->routes, 0))->stream_idle_timeout_ms, 0));
    cr_assert(not(proxy_of(tg_route_table_at(conf->routes, 1))->stream));
    cr_assert(
        eq(u32, proxy_of(tg_route_table_at(conf->routes, 1))->stream_idle_timeout_ms, 3600000));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\", \"stream\":\n1}",
               "4:1: expected true or false, got an integer (at routes[0].stream)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"upstream\": \"a\","
               " \"stream_idle_timeout_ms\":\n3600001}",
               "4:1: expected an integer in 0..3600000, got 3600001 "
               "(at routes[0].stream_idle_timeout_ms)");
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"local\": \"health\",\n"
               "\"stream\": true}",
               "4:1: \"stream\" is only for routes with \"upstream\" (at routes[0].stream)");
}

/* ---- matching ----------------------------------------------------------------------------- */

Test(route_table, literal_beats_param)
{
    expect_winner(PROXY("lit", "GET", "/a/b"), PROXY("par", "GET", "/a/{x}"), "GET", "/a/b", "lit");
    expect_winner(PROXY("lit", "GET", "/a/b"), PROXY("par", "GET", "/a/{x}"), "GET", "/a/c", "par");
}

Test(route_table, param_beats_tail)
{
    expect_winner(PROXY("tail", "GET", "/a/*"), PROXY("par", "GET", "/a/{x}"), "GET", "/a/v",
                  "par");
    expect_winner(PROXY("tail", "GET", "/a/*"), PROXY("par", "GET", "/a/{x}"), "GET", "/a/v/w",
                  "tail");
}

Test(route_table, exact_beats_prefix)
{
    expect_winner(PROXY("exact", "GET", "/api"), PROXY("prefix", "GET", "/api/*"), "GET", "/api",
                  "exact");
    expect_winner(PROXY("exact", "GET", "/api"), PROXY("prefix", "GET", "/api/*"), "GET", "/api/",
                  "prefix");
}

Test(route_table, longer_prefix_wins)
{
    expect_winner(PROXY("all", "GET", "/*"), PROXY("api", "GET", "/api/*"), "GET", "/api/x", "api");
    expect_winner(PROXY("api", "GET", "/api/*"), PROXY("v2", "GET", "/api/v2/*"), "GET",
                  "/api/v2/x", "v2");
    expect_winner(PROXY("api", "GET", "/api/*"), PROXY("v2", "GET", "/api/v2/*"), "GET",
                  "/api/v3/x", "api");
    expect_winner(PROXY("all", "GET", "/*"), PROXY("api", "GET", "/api/*"), "GET", "/x", "all");
}

Test(route_table, leftmost_difference_decides)
{
    /* the literal in segment 2 wins over a longer prefix that has a parameter there */
    expect_winner(PROXY("lit", "GET", "/a/b/*"), PROXY("par", "GET", "/a/{x}/c/*"), "GET",
                  "/a/b/c/d", "lit");
}

Test(route_table, named_method_beats_any)
{
    expect_winner(PROXY("get", "GET", "/x"), PROXY("any", "*", "/x"), "GET", "/x", "get");
    expect_winner(PROXY("get", "GET", "/x"), PROXY("any", "*", "/x"), "POST", "/x", "any");
    /* but the pattern comes first: a more specific "*" route beats a vaguer GET route */
    expect_winner(PROXY("get", "GET", "/x/*"), PROXY("any", "*", "/x/y"), "GET", "/x/y", "any");
}

Test(route_table, head_is_served_by_get)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("get", "GET", "/x"));

    cr_assert(eq(int, match(conf, "HEAD", "/x", &m), TG_OK));
    cr_assert(eq(str, m.route->name, "get"));
    cr_assert(eq(int, match(conf, "POST", "/x", &m), TG_EMETHOD));
    tg_conf_unref(conf);
    teardown();
    expect_winner(PROXY("get", "GET", "/x"), PROXY("head", "HEAD", "/x"), "HEAD", "/x", "head");
    expect_winner(PROXY("get", "GET", "/x"), PROXY("any", "*", "/x"), "HEAD", "/x", "get");
}

Test(route_table, methods_are_case_sensitive)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("get", "GET", "/x"));

    cr_assert(eq(int, match(conf, "get", "/x", &m), TG_EMETHOD));
    tg_conf_unref(conf);
}

Test(route_table, params_are_raw)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("r", "GET", "/patients/{id}/report/{kind}"));
    const char *path = "/patients/p%2F1/report/a%20b";

    cr_assert(eq(int, match(conf, "GET", path, &m), TG_OK));
    cr_assert(eq(sz, m.n_params, 2));
    cr_assert(eq(str, (char *)m.params[0].name, "id"));
    cr_assert(eq(sz, m.params[0].len, 5));
    cr_assert(eq(int, memcmp(m.params[0].value, "p%2F1", 5), 0));
    cr_assert(eq(ptr, (void *)m.params[0].value, (void *)(path + 10)));
    cr_assert(eq(str, (char *)m.params[1].name, "kind"));
    cr_assert(eq(int, memcmp(m.params[1].value, "a%20b", 5), 0));
    cr_assert(eq(sz, m.rest_len, 0));
    tg_conf_unref(conf);
}

Test(route_table, match_uses_path_len_only)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("r", "GET", "/a/{x}"));
    const char *target = "/a/b?c=/d";

    cr_assert(eq(int, tg_route_table_match(conf->routes, "GET", target, 4, &m), TG_OK));
    cr_assert(eq(sz, m.params[0].len, 1));
    tg_conf_unref(conf);
}

static void expect_rest(const struct tg_conf *conf, const char *path, const char *rest)
{
    struct tg_route_match m;

    int rc = match(conf, "GET", path, &m);

    cr_assert(rc == TG_OK && m.rest_len == strlen(rest) && memcmp(m.rest, rest, m.rest_len) == 0,
              "%s: rc %d, rest \"%.*s\", wanted \"%s\"", path, rc, (int)m.rest_len, m.rest, rest);
}

Test(route_table, prefix_rest)
{
    struct tg_route_match m;
    struct tg_conf *conf =
        load_ok(PROXY("api", "GET", "/api/*") ",\n" PROXY("u", "GET", "/u/{id}/*"));

    expect_rest(conf, "/api", "");
    expect_rest(conf, "/api/", "/");
    expect_rest(conf, "/api/x/y", "/x/y");
    expect_rest(conf, "/api//x", "//x");
    expect_rest(conf, "/u/7/f", "/f");
    cr_assert(eq(int, match(conf, "GET", "/u/7", &m), TG_OK));
    cr_assert(eq(int, memcmp(m.params[0].value, "7", 1), 0));
    cr_assert(eq(int, match(conf, "GET", "/apix", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "/u", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
}

Test(route_table, root_and_catch_all)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("root", "GET", "/"));

    cr_assert(eq(int, match(conf, "GET", "/", &m), TG_OK));
    cr_assert(eq(int, match(conf, "GET", "/x", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "//", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok(PROXY("all", "GET", "/*"));
    expect_rest(conf, "/", "/");
    expect_rest(conf, "/x/y", "/x/y");
    tg_conf_unref(conf);
    teardown();
    expect_winner(PROXY("root", "GET", "/"), PROXY("all", "GET", "/*"), "GET", "/", "root");
}

Test(route_table, trailing_slash_and_empty_segments)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("s", "POST", "/submit") ",\n" PROXY("p", "GET", "/a/{x}"));

    cr_assert(eq(int, match(conf, "POST", "/submit", &m), TG_OK));
    cr_assert(eq(int, match(conf, "POST", "/submit/", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "POST", "//submit", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "/a/", &m), TG_ENOROUTE)); /* {x} needs a segment */
    cr_assert(eq(int, match(conf, "GET", "/a//", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "/a/b/", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
}

Test(route_table, not_found_vs_method_not_allowed)
{
    struct tg_route_match m;
    char allow[64];
    struct tg_conf *conf =
        load_ok(PROXY("g", "GET", "/x") ",\n" PROXY("p", "POST", "/x") ",\n" PROXY(
            "d", "DELETE", "/{y}") ",\n" PROXY("o", "PUT", "/z/*") ",\n" PROXY("h", "GET",
                                                                               "/healthz"));

    cr_assert(eq(int, match(conf, "PATCH", "/x", &m), TG_EMETHOD));
    cr_assert(zero(ptr, (void *)m.route));
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/x", 2, allow, sizeof(allow)), 23));
    cr_assert(eq(str, allow, "DELETE, GET, HEAD, POST"));
    cr_assert(eq(int, match(conf, "POST", "/healthz", &m), TG_EMETHOD));
    tg_route_table_allow(conf->routes, "/healthz", 8, allow, sizeof(allow));
    cr_assert(eq(str, allow, "DELETE, GET, HEAD"));
    cr_assert(eq(int, match(conf, "GET", "/nope/x", &m), TG_ENOROUTE));
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/nope/x", 7, allow, sizeof(allow)), 0));
    cr_assert(eq(str, allow, ""));
    cr_assert(eq(int, match(conf, "GET", "/z", &m), TG_EMETHOD));
    tg_route_table_allow(conf->routes, "/z", 2, allow, sizeof(allow));
    cr_assert(eq(str, allow, "DELETE, PUT"));
    tg_conf_unref(conf);
}

Test(route_table, allow_keeps_whole_names_when_short)
{
    char allow[64];
    struct tg_conf *conf = load_ok(PROXY("g", "GET", "/x") ",\n" PROXY("p", "POST", "/x"));

    /* "GET, HEAD, POST" is 15 characters: 16 bytes fit it, 15 keep "GET, HEAD" */
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/x", 2, allow, 16), 15));
    cr_assert(eq(str, allow, "GET, HEAD, POST"));
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/x", 2, allow, 15), 9));
    cr_assert(eq(str, allow, "GET, HEAD"));
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/x", 2, allow, 3), 0));
    cr_assert(eq(str, allow, ""));
    cr_assert(eq(sz, tg_route_table_allow(conf->routes, "/x", 2, allow, 0), 0));
    tg_conf_unref(conf);
}

Test(route_table, dot_segments_are_refused)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("api", "*", "/api/*"));
    static const char *const bad[] = {
        "/api/../admin", "/api/./x", "/api/%2e%2E/x", "/api/.%2e", "/api/..", "/..",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert(eq(int, match(conf, "GET", bad[i], &m), TG_EINVAL), "%s", bad[i]);
    }
    expect_rest(conf, "/api/..x/.../%2e%2e%2e", "/..x/.../%2e%2e%2e");
    tg_conf_unref(conf);
}

Test(route_table, path_must_start_with_slash)
{
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("all", "*", "/*"));

    cr_assert(eq(int, match(conf, "OPTIONS", "*", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "", &m), TG_ENOROUTE));
    cr_assert(eq(int, match(conf, "GET", "http://h/x", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
}

Test(route_table, long_paths)
{
    char path[256] = "";
    size_t len = 0;
    struct tg_route_match m;
    struct tg_conf *conf = load_ok(PROXY("all", "GET", "/*") ",\n" PROXY("s", "GET", "/s/{x}"));

    for (int i = 0; i < 40; i++) {
        len += (size_t)snprintf(path + len, sizeof(path) - len, "/s");
    }
    cr_assert(match(conf, "GET", path, &m) == TG_OK);
    cr_assert(strcmp(m.route->name, "all") == 0 && m.rest_len == 80);
    tg_conf_unref(conf);
}

Test(route_table, expand)
{
    struct tg_route_match m;
    char out[64];
    struct tg_conf *conf = load_ok(PROXY("r", "GET", "/p/{id}/r/{kind}"));

    cr_assert(eq(int, match(conf, "GET", "/p/a%2Fb/r/x", &m), TG_OK));
    cr_assert(eq(long, tg_route_expand("/q/{id}/{kind}.json", &m, out, sizeof(out)), 15));
    cr_assert(eq(str, out, "/q/a%2Fb/x.json"));
    cr_assert(eq(long, tg_route_expand("/static", &m, out, sizeof(out)), 7));
    cr_assert(eq(str, out, "/static"));
    cr_assert(eq(long, tg_route_expand("/q/{nope}", &m, out, sizeof(out)), -1));
    cr_assert(eq(long, tg_route_expand("/q/{id", &m, out, sizeof(out)), -1));
    /* "/q/a%2Fb" is 8 bytes: it fits in 9, not in 8 */
    cr_assert(eq(long, tg_route_expand("/q/{id}", &m, out, 9), 8));
    cr_assert(eq(long, tg_route_expand("/q/{id}", &m, out, 8), -1));
    cr_assert(eq(long, tg_route_expand("", &m, out, 1), 0));
    cr_assert(eq(long, tg_route_expand("", &m, out, 0), -1));
    tg_conf_unref(conf);
}

Test(route_table, demo_conf_routes)
{
    char file[1024], err[TG_CONF_ERR_MAX], allow[64];
    struct tg_conf *conf = NULL;
    struct tg_route_match m;

    snprintf(file, sizeof(file), "%s/conf/tracegate.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK));
    cr_assert(eq(int, match(conf, "POST", "/submit", &m), TG_OK));
    cr_assert(eq(str, m.route->name, "submit"));
    cr_assert(eq(int, match(conf, "GET", "/submit", &m), TG_EMETHOD));
    tg_route_table_allow(conf->routes, "/submit", 7, allow, sizeof(allow));
    cr_assert(eq(str, allow, "POST"));
    cr_assert(eq(int, match(conf, "GET", "/patients/42", &m), TG_OK));
    cr_assert(eq(str, m.route->name, "patient"));
    cr_assert(eq(int, match(conf, "GET", "/patients/42/report", &m), TG_OK));
    cr_assert(eq(str, m.route->name, "patient_report"));
    cr_assert(eq(ptr, (void *)m.route->policy.handler, (void *)&tg_handler_fanout));
    cr_assert(eq(int, match(conf, "DELETE", "/api/patients/42", &m), TG_OK));
    cr_assert(eq(str, m.route->name, "api"));
    cr_assert(eq(int, match(conf, "HEAD", "/healthz", &m), TG_OK));
    cr_assert(eq(str, (char *)local_of(m.route)->what, "health"));
    cr_assert(eq(int, match(conf, "GET", "/readyz", &m), TG_OK));
    cr_assert(eq(int, match(conf, "GET", "/metrics", &m), TG_OK));
    cr_assert(eq(int, match(conf, "GET", "/patients", &m), TG_ENOROUTE));
    tg_conf_unref(conf);
}

Test(route_table, backend_path_may_carry_a_fixed_query)
{
    struct tg_conf *conf = load_ok("{\"method\": \"GET\", \"path\": \"/r/{id}\", \"backends\": ["
                                   "{\"name\": \"b\", \"upstream\": \"a\", "
                                   "\"path\": \"/x/{id}?delay_ms=300&v=a/b\"}]}");

    tg_conf_unref(conf);
    teardown();
}

Test(route_table, backend_query_takes_no_param)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf;
    int rc = load("{\"method\": \"GET\", \"path\": \"/r/{id}\", \"backends\": ["
                  "{\"name\": \"b\", \"upstream\": \"a\", \"path\": \"/x?id={id}\"}]}",
                  &conf, err, sizeof(err));

    cr_assert(eq(int, rc, TG_EINVAL));
    cr_assert(strstr(err, "character '{' is not allowed in the query") != NULL, "%s", err);
    teardown();
}

Test(route_table, access_log_and_log_path)
{
    struct tg_conf *c =
        load_ok("{\"method\": \"GET\", \"path\": \"/p/{id}\", \"local\": \"health\", "
                "\"access_log\": false, \"log_path\": \"pattern\"}");
    const struct tg_route *r = tg_route_table_at(c->routes, 0);

    cr_assert(not(r->policy.access_log));
    cr_assert(r->policy.log_pattern);
    cr_assert(eq(str, (char *)r->policy.path, "/p/{id}"));
    tg_conf_unref(c);
    c = load_ok("{\"method\": \"GET\", \"path\": \"/p\", \"local\": \"health\"}");
    r = tg_route_table_at(c->routes, 0);
    cr_assert(r->policy.access_log, "on by default");
    cr_assert(not(r->policy.log_pattern), "raw by default");
    tg_conf_unref(c);
    expect_err("{\"method\": \"GET\", \"path\": \"/a\", \"local\": \"health\", \"log_path\":\n"
               "\"template\"}",
               "4:1: bad log_path \"template\": expected \"raw\" or \"pattern\" (at "
               "routes[0].log_path)");
}
