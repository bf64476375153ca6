/* Unit tests for gateway/conf.c (the settings part of the conf file) and gateway/jsonpos.c (the
 * position index behind FILE:LINE:COL messages). Each conf is written to a temporary file, like
 * the gateway reads it. Expected positions are written by hand: most confs put the value under
 * test at the start of a line, so LINE:COL can be checked by eye. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"
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
#include "tests/support/unit/tmpconf.h"

static const char *write_conf(const char *text)
{
    return tmpconf_write("conf", text);
}

static void teardown(void)
{
    tmpconf_remove();
}

TestSuite(conf, .fini = teardown, .timeout = 10);

static struct tg_conf *load_ok(const char *text)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;
    int rc = tg_conf_load(write_conf(text), tg_route_table_load, &conf, err, sizeof(err));

    cr_assert(eq(int, rc, TG_OK), "unexpected error: %s", err);
    cr_assert(not(zero(ptr, conf)));
    return conf;
}

/* Loads text, which must fail with "<file>:<want>". */
static void expect_err(const char *text, const char *want)
{
    char err[TG_CONF_ERR_MAX] = "", full[TG_CONF_ERR_MAX + 600];
    struct tg_conf *conf = NULL;
    const char *file = write_conf(text);
    int rc = tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err));

    snprintf(full, sizeof(full), "%s:%s", file, want);
    cr_assert(rc == TG_EINVAL && conf == NULL, "rc %d, wanted %s", rc, want);
    cr_assert(eq(str, err, full));
}

Test(conf, empty_object_gives_every_default)
{
    struct tg_conf *conf = load_ok("{}");

    cr_assert(eq(str, conf->file, (char *)tmpconf_path()));
    cr_assert(eq(str, conf->listen_host, "0.0.0.0"));
    cr_assert(eq(u32, conf->port, 8080));
    cr_assert(eq(u32, conf->workers, 0));
    cr_assert(eq(str, conf->trace_header, "X-Trace-Id"));
    cr_assert(eq(sz, conf->n_trace_accept, 0));
    cr_assert(eq(u32, conf->max_connections, 10000));
    cr_assert(eq(sz, conf->max_body_bytes, 1048576));
    cr_assert(eq(sz, conf->max_response_bytes, 16777216));
    cr_assert(eq(u32, conf->client_timeout_ms, 30000));
    cr_assert(eq(u32, conf->shutdown_grace_ms, 10000));
    cr_assert(zero(ptr, conf->tls_cert));
    cr_assert(zero(ptr, conf->tls_key));
    cr_assert(eq(sz, conf->n_upstreams, 0));
    cr_assert(eq(sz, tg_route_table_count(conf->routes), 0));
    cr_assert(eq(u32, atomic_load(&conf->refs), 1));
    tg_conf_unref(conf);
}

Test(conf, every_key_is_parsed)
{
    struct tg_conf *conf = load_ok(
        "{\n"
        "  \"listen\": \"127.0.0.1:9000\",\n"
        "  \"workers\": 3,\n"
        "  \"trace\": {\"header\": \"X-Req\", \"accept\": [\"trace-id\", \"X-Request-Id\"]},\n"
        "  \"limits\": {\"max_connections\": 5, \"max_body_bytes\": 6,\n"
        "             \"max_response_bytes\": 7, \"client_timeout_ms\": 8},\n"
        "  \"shutdown_grace_ms\": 9,\n"
        "  \"tls\": {\"cert\": \"certs/c.pem\", \"key\": \"/etc/k.pem\"},\n"
        "  \"upstreams\": {\n"
        "    \"svc\": {\"url\": \"https://svc.local:8443/base/\", \"timeout_ms\": 11,\n"
        "            \"connect_timeout_ms\": 12, \"max_in_flight\": 13},\n"
        "    \"plain\": {\"url\": \"http://[::1]\"}\n"
        "  },\n"
        "  \"routes\": []\n"
        "}\n");
    char cert[600];

    cr_assert(eq(str, conf->listen_host, "127.0.0.1"));
    cr_assert(eq(u32, conf->port, 9000));
    cr_assert(eq(u32, conf->workers, 3));
    cr_assert(eq(str, conf->trace_header, "X-Req"));
    cr_assert(eq(sz, conf->n_trace_accept, 2));
    cr_assert(eq(str, conf->trace_accept[0], "trace-id"));
    cr_assert(eq(str, conf->trace_accept[1], "X-Request-Id"));
    cr_assert(eq(u32, conf->max_connections, 5));
    cr_assert(eq(sz, conf->max_body_bytes, 6));
    cr_assert(eq(sz, conf->max_response_bytes, 7));
    cr_assert(eq(u32, conf->client_timeout_ms, 8));
    cr_assert(eq(u32, conf->shutdown_grace_ms, 9));
    /* relative to the conf file's directory; absolute paths stay as written */
    snprintf(cert, sizeof(cert), "%.*s/certs/c.pem",
             (int)(strrchr(tmpconf_path(), '/') - tmpconf_path()), tmpconf_path());
    cr_assert(eq(str, conf->tls_cert, cert));
    cr_assert(eq(str, conf->tls_key, "/etc/k.pem"));
    cr_assert(eq(sz, conf->n_upstreams, 2));
    cr_assert(eq(str, conf->upstreams[0].name, "svc"));
    cr_assert(eq(str, conf->upstreams[0].url, "https://svc.local:8443"));
    cr_assert(eq(str, conf->upstreams[0].base_path, "/base"));
    cr_assert(eq(u32, conf->upstreams[0].timeout_ms, 11));
    cr_assert(eq(u32, conf->upstreams[0].connect_timeout_ms, 12));
    cr_assert(eq(u32, conf->upstreams[0].max_in_flight, 13));
    /* upstream defaults */
    cr_assert(eq(str, conf->upstreams[1].url, "http://[::1]"));
    cr_assert(eq(str, conf->upstreams[1].base_path, ""));
    cr_assert(eq(u32, conf->upstreams[1].timeout_ms, 5000));
    cr_assert(eq(u32, conf->upstreams[1].connect_timeout_ms, 1000));
    cr_assert(eq(u32, conf->upstreams[1].max_in_flight, 0));
    tg_conf_unref(conf);
}

Test(conf, load_without_routes_loader_ignores_routes)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;

    cr_assert(
        eq(int, tg_conf_load(write_conf("{\"routes\": 5}"), NULL, &conf, err, sizeof(err)), TG_OK));
    cr_assert(zero(ptr, conf->routes));
    cr_assert(eq(str, err, ""));
    tg_conf_unref(conf);
}

Test(conf, listen_accepts_ipv4_ipv6_and_port_range)
{
    struct tg_conf *conf = load_ok("{\"listen\": \"[::]:65535\"}");

    cr_assert(eq(str, conf->listen_host, "::"));
    cr_assert(eq(u32, conf->port, 65535));
    tg_conf_unref(conf);
    conf = load_ok("{\"listen\": \"127.0.0.1:0\"}");
    cr_assert(eq(u32, conf->port, 0));
    tg_conf_unref(conf);
}

Test(conf, listen_rejects_bad_addresses)
{
    static const char *const bad[] = {
        "0.0.0.0",     "0.0.0.0:65536", "localhost:80", ":80",           "[::]80", "::1:80",
        "1.2.3.4:+80", "1.2.3.4:",      "[::1:80",      "1.2.3.4:8080x", "[]:80",  "1.2.3:80",
    };
    char text[128], want[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{\n\"listen\": \"%s\"}", bad[i]);
        snprintf(want, sizeof(want),
                 "2:11: bad listen address \"%s\": expected \"IPv4:port\" or \"[IPv6]:port\" "
                 "with a numeric address and a port in 0..65535 (at listen)",
                 bad[i]);
        expect_err(text, want);
        teardown();
    }
}

Test(conf, syntax_error_uses_jansson_position)
{
    expect_err("{\n  \"listen\": \"0.0.0.0:1\",\n  \"workers\": ,\n}",
               "3:14: unexpected token near ','");
}

Test(conf, syntax_error_at_end_of_file)
{
    expect_err("{\"workers\": 1", "1:13: '}' expected near end of file");
}

Test(conf, empty_file_is_a_syntax_error)
{
    expect_err("", "1:0: '[' or '{' expected near end of file");
}

Test(conf, missing_file)
{
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;

    cr_assert(
        eq(int, tg_conf_load("/nonexistent/tg.json", NULL, &conf, err, sizeof(err)), TG_EINVAL));
    cr_assert(eq(str, err, "/nonexistent/tg.json: cannot open: No such file or directory"));
    cr_assert(zero(ptr, conf));
}

Test(conf, duplicate_key_at_top_level)
{
    expect_err("{\n  \"workers\": 1,\n  \"workers\": 2\n}",
               "3:3: duplicate key, first defined at line 2 column 3 (at workers)");
}

Test(conf, duplicate_key_nested)
{
    expect_err("{\n"
               "  \"upstreams\": {\n"
               "    \"a\": {\n"
               "      \"url\": \"http://h\",\n"
               "      \"url\": \"http://h\"\n"
               "    }\n"
               "  }\n"
               "}",
               "5:7: duplicate key, first defined at line 4 column 7 (at upstreams.a.url)");
}

Test(conf, duplicate_key_before_a_later_syntax_error)
{
    /* jansson stops at the duplicate; what follows is never parsed */
    expect_err("{\"trace\": {\"header\": \"A\", \"header\": \"B\"}, !!!",
               "1:27: duplicate key, first defined at line 1 column 12 (at trace.header)");
}

Test(conf, root_must_be_an_object)
{
    expect_err("\n  [1]", "2:3: expected the conf to be an object, got an array");
}

Test(conf, unknown_key_top_level)
{
    expect_err("{\n  \"listen\": \"0.0.0.0:1\",\n  \"listn\": \"0.0.0.0:2\"\n}",
               "3:3: unknown key \"listn\", did you mean \"listen\"? (at listn)");
}

Test(conf, unknown_key_nested)
{
    expect_err("{\n  \"limits\": {\n    \"max_conections\": 1\n  }\n}",
               "3:5: unknown key \"max_conections\", did you mean \"max_connections\"? "
               "(at limits.max_conections)");
    teardown();
    expect_err("{\n  \"trace\": {\n    \"headers\": \"X\"\n  }\n}",
               "3:5: unknown key \"headers\", did you mean \"header\"? (at trace.headers)");
    teardown();
    expect_err("{\n  \"tls\": {\n    \"cert\": \"a\",\n    \"crt\": \"b\"\n  }\n}",
               "4:5: unknown key \"crt\", did you mean \"cert\"? (at tls.crt)");
}

Test(conf, unknown_key_in_upstream)
{
    expect_err("{\n"
               "  \"upstreams\": {\n"
               "    \"p\": {\n"
               "      \"url\": \"http://h\",\n"
               "      \"tmeout_ms\": 1\n"
               "    }\n"
               "  }\n"
               "}",
               "5:7: unknown key \"tmeout_ms\", did you mean \"timeout_ms\"? "
               "(at upstreams.p.tmeout_ms)");
}

Test(conf, unknown_key_with_dot_is_bracketed_in_path)
{
    expect_err("{\n  \"a.b\": 1\n}", "2:3: unknown key \"a.b\" (at [\"a.b\"])");
}

Test(conf, wrong_types)
{
    expect_err("{\n  \"workers\": \"2\"\n}",
               "2:14: expected an integer in 0..64, got a string (at workers)");
    teardown();
    expect_err("{\n  \"workers\": 2.0\n}",
               "2:14: expected an integer in 0..64, got a real number (at workers)");
    teardown();
    expect_err("{\n  \"listen\": 8080\n}", "2:13: expected a string, got an integer (at listen)");
    teardown();
    expect_err("{\n  \"trace\": []\n}", "2:12: expected an object, got an array (at trace)");
    teardown();
    expect_err("{\n  \"upstreams\": {\"a\": true}\n}",
               "2:22: expected an object, got a boolean (at upstreams.a)");
    teardown();
    expect_err("{\n  \"trace\": {\"accept\": \"trace-id\"}\n}",
               "2:23: expected an array, got a string (at trace.accept)");
    teardown();
    expect_err("{\n  \"trace\": {\"accept\": [null]}\n}",
               "2:24: expected a string, got null (at trace.accept[0])");
}

Test(conf, empty_string_is_rejected)
{
    expect_err("{\n  \"listen\": \"\"\n}", "2:13: expected a non-empty string (at listen)");
}

Test(conf, workers_range)
{
    struct tg_conf *conf = load_ok("{\"workers\": 64}");

    cr_assert(eq(u32, conf->workers, 64));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\n\"workers\": 65}", "2:12: expected an integer in 0..64, got 65 (at workers)");
    teardown();
    expect_err("{\n\"workers\": -1}", "2:12: expected an integer in 0..64, got -1 (at workers)");
}

Test(conf, limits_ranges_both_sides)
{
    struct tg_conf *conf = load_ok("{\"limits\": {\"max_connections\": 1, \"max_body_bytes\": 0,"
                                   " \"max_response_bytes\": 1073741824,"
                                   " \"client_timeout_ms\": 3600000}, \"shutdown_grace_ms\": 0}");

    cr_assert(eq(u32, conf->max_connections, 1));
    cr_assert(eq(sz, conf->max_body_bytes, 0));
    cr_assert(eq(sz, conf->max_response_bytes, 1073741824));
    cr_assert(eq(u32, conf->client_timeout_ms, 3600000));
    cr_assert(eq(u32, conf->shutdown_grace_ms, 0));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"max_connections\": 1000000, \"max_body_bytes\": 1073741824,"
                   " \"max_response_bytes\": 1, \"client_timeout_ms\": 1},"
                   " \"shutdown_grace_ms\": 600000}");
    cr_assert(eq(u32, conf->max_connections, 1000000));
    cr_assert(eq(sz, conf->max_body_bytes, 1073741824));
    cr_assert(eq(sz, conf->max_response_bytes, 1));
    cr_assert(eq(u32, conf->client_timeout_ms, 1));
    cr_assert(eq(u32, conf->shutdown_grace_ms, 600000));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"limits\": {\n\"max_connections\": 0}}",
               "2:20: expected an integer in 1..1000000, got 0 (at limits.max_connections)");
    teardown();
    expect_err("{\"limits\": {\n\"max_connections\": 1000001}}",
               "2:20: expected an integer in 1..1000000, got 1000001 (at limits.max_connections)");
    teardown();
    expect_err("{\"limits\": {\n\"max_body_bytes\": 1073741825}}",
               "2:19: expected an integer in 0..1073741824, got 1073741825 "
               "(at limits.max_body_bytes)");
    teardown();
    expect_err("{\"limits\": {\n\"max_response_bytes\": 0}}",
               "2:23: expected an integer in 1..1073741824, got 0 (at limits.max_response_bytes)");
    teardown();
    expect_err("{\"limits\": {\n\"client_timeout_ms\": 3600001}}",
               "2:22: expected an integer in 1..3600000, got 3600001 "
               "(at limits.client_timeout_ms)");
    teardown();
    expect_err("{\n\"shutdown_grace_ms\": 600001}",
               "2:22: expected an integer in 0..600000, got 600001 (at shutdown_grace_ms)");
}

Test(conf, integer_beyond_json_int_is_a_syntax_error)
{
    expect_err("{\"workers\": 99999999999999999999}",
               "1:32: too big integer near '99999999999999999999'");
}

Test(conf, trace_accept_limit_both_sides)
{
    struct tg_conf *conf = load_ok(
        "{\"trace\": {\"accept\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\"]}}");

    cr_assert(eq(sz, conf->n_trace_accept, 8));
    cr_assert(eq(str, conf->trace_accept[7], "h"));
    tg_conf_unref(conf);
    teardown();
    expect_err(
        "{\"trace\": {\n\"accept\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", "
        "\"i\"]}}",
        "2:11: too many header names: 9 (at most 8) (at trace.accept)");
}

Test(conf, trace_header_must_be_a_token)
{
    expect_err("{\"trace\": {\n\"header\": \"X Trace\"}}",
               "2:11: bad header name \"X Trace\": expected an HTTP token (letters, digits, "
               "!#$%&'*+-.^_`|~) of at most 64 characters (at trace.header)");
    teardown();
    expect_err("{\"trace\": {\"accept\": [\"ok\",\n\"a:b\"]}}",
               "2:1: bad header name \"a:b\": expected an HTTP token (letters, digits, "
               "!#$%&'*+-.^_`|~) of at most 64 characters (at trace.accept[1])");
}

Test(conf, trace_header_length_both_sides)
{
    char text[256], want[512];
    char name[66];

    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(text, sizeof(text), "{\"trace\": {\"header\": \"%s\"}}", name);
    tg_conf_unref(load_ok(text));
    teardown();
    name[64] = 'a';
    name[65] = '\0';
    snprintf(text, sizeof(text), "{\"trace\": {\n\"header\": \"%s\"}}", name);
    /* messages quote at most 64 bytes of a value, then "..." */
    snprintf(want, sizeof(want),
             "2:11: bad header name \"%.64s\"...: expected an HTTP token (letters, digits, "
             "!#$%%&'*+-.^_`|~) of at most 64 characters (at trace.header)",
             name);
    expect_err(text, want);
}

Test(conf, trace_names_are_case_insensitive_duplicates)
{
    expect_err("{\"trace\": {\"accept\": [\"trace-id\",\n\"TRACE-ID\"]}}",
               "2:1: header name \"TRACE-ID\" is already accepted (at trace.accept[1])");
    teardown();
    expect_err("{\"trace\": {\"accept\": [\n\"x-trace-id\"]}}",
               "2:1: header name \"x-trace-id\" is already accepted (at trace.accept[0])");
}

Test(conf, tls_needs_cert_and_key)
{
    expect_err("{\n  \"tls\": {\"cert\": \"c.pem\"}\n}",
               "2:10: missing required key \"key\" (at tls)");
    teardown();
    expect_err("{\n  \"tls\": {\"key\": \"k.pem\"}\n}",
               "2:10: missing required key \"cert\" (at tls)");
}

Test(conf, upstream_url_forms)
{
    struct tg_conf *conf = load_ok("{\"upstreams\": {"
                                   "\"a\": {\"url\": \"http://h\"},"
                                   "\"b\": {\"url\": \"http://h:1/\"},"
                                   "\"c\": {\"url\": \"https://h.example:65535/x/y//\"},"
                                   "\"d\": {\"url\": \"http://[2001:db8::1]:80/p%20q\"},"
                                   "\"e_-9\": {\"url\": \"http://svc_1.internal\"}}}");

    cr_assert(eq(str, conf->upstreams[0].url, "http://h"));
    cr_assert(eq(str, conf->upstreams[0].base_path, ""));
    cr_assert(eq(str, conf->upstreams[1].url, "http://h:1"));
    cr_assert(eq(str, conf->upstreams[1].base_path, ""));
    cr_assert(eq(str, conf->upstreams[2].url, "https://h.example:65535"));
    cr_assert(eq(str, conf->upstreams[2].base_path, "/x/y"));
    cr_assert(eq(str, conf->upstreams[3].url, "http://[2001:db8::1]:80"));
    cr_assert(eq(str, conf->upstreams[3].base_path, "/p%20q"));
    cr_assert(eq(str, conf->upstreams[4].name, "e_-9"));
    cr_assert(eq(ptr, (void *)tg_conf_upstream_get(conf, "c"), &conf->upstreams[2]));
    cr_assert(zero(ptr, (void *)tg_conf_upstream_get(conf, "C")));
    cr_assert(zero(ptr, (void *)tg_conf_upstream_get(conf, "zz")));
    tg_conf_unref(conf);
}

Test(conf, upstream_bad_urls)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"ftp://h", "expected http:// or https://"},
        {"HTTP://h", "expected http:// or https://"},
        {"h:80", "expected http:// or https://"},
        {"http://", "missing host"},
        {"http://:80", "missing host"},
        {"http://h:0", "bad port (expected 1..65535)"},
        {"http://h:65536", "bad port (expected 1..65535)"},
        {"http://h:", "bad port (expected 1..65535)"},
        {"http://h:8x", "bad port (expected 1..65535)"},
        {"http://u:p@h", "user info is not supported"},
        {"http://h/a?b=1", "query and fragment are not supported"},
        {"http://h#f", "query and fragment are not supported"},
        {"http://h/a b", "bad character in path"},
        {"http://h/%zz", "bad character in path"},
        {"http://h!/", "bad character in host"},
        {"http://[::1/", "bad IPv6 address"},
        {"http://[zz::1]/", "bad IPv6 address"},
        {"http://[::1]x/", "bad IPv6 address"},
    };
    char text[256], want[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{\"upstreams\": {\"up\": {\n\"url\": \"%s\"}}}", bad[i].url);
        snprintf(want, sizeof(want), "2:8: bad url \"%s\": %s (at upstreams.up.url)", bad[i].url,
                 bad[i].why);
        expect_err(text, want);
        teardown();
    }
}

Test(conf, upstream_needs_url)
{
    expect_err("{\"upstreams\": {\n\"up\": {\"timeout_ms\": 5}}}",
               "2:7: missing required key \"url\" (or \"targets\") (at upstreams.up)");
}

Test(conf, upstream_bad_name_at_key)
{
    expect_err("{\"upstreams\": {\n  \"pa.tient\": {\"url\": \"http://h\"}}}",
               "2:3: bad upstream name \"pa.tient\": expected 1..64 characters of [A-Za-z0-9_-] "
               "(at upstreams[\"pa.tient\"])");
    teardown();
    expect_err("{\"upstreams\": {\n  \"\": {\"url\": \"http://h\"}}}",
               "2:3: bad upstream name \"\": expected 1..64 characters of [A-Za-z0-9_-] "
               "(at upstreams[\"\"])");
}

Test(conf, upstream_ranges_both_sides)
{
    struct tg_conf *conf =
        load_ok("{\"upstreams\": {\"u\": {\"url\": \"http://h\", \"timeout_ms\": 1,"
                " \"connect_timeout_ms\": 60000, \"max_in_flight\": 1000000}}}");

    cr_assert(eq(u32, conf->upstreams[0].timeout_ms, 1));
    cr_assert(eq(u32, conf->upstreams[0].connect_timeout_ms, 60000));
    cr_assert(eq(u32, conf->upstreams[0].max_in_flight, 1000000));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"upstreams\": {\"u\": {\"url\": \"http://h\",\n\"timeout_ms\": 0}}}",
               "2:15: expected an integer in 1..3600000, got 0 (at upstreams.u.timeout_ms)");
    teardown();
    expect_err("{\"upstreams\": {\"u\": {\"url\": \"http://h\",\n\"connect_timeout_ms\": 60001}}}",
               "2:23: expected an integer in 1..60000, got 60001 "
               "(at upstreams.u.connect_timeout_ms)");
    teardown();
    expect_err("{\"upstreams\": {\"u\": {\"url\": \"http://h\",\n\"max_in_flight\": 1000001}}}",
               "2:18: expected an integer in 0..1000000, got 1000001 "
               "(at upstreams.u.max_in_flight)");
}

Test(conf, ref_and_unref)
{
    struct tg_conf *conf = load_ok("{\"upstreams\": {\"u\": {\"url\": \"http://h\"}}}");

    cr_assert(eq(ptr, tg_conf_ref(conf), conf));
    cr_assert(eq(u32, atomic_load(&conf->refs), 2));
    tg_conf_unref(conf);
    cr_assert(eq(u32, atomic_load(&conf->refs), 1));
    tg_conf_unref(conf); /* frees: ASan reports a leak or a double free otherwise */
    tg_conf_unref(NULL);
    cr_assert(zero(ptr, tg_conf_ref(NULL)));
}

Test(conf, error_falls_back_to_nearest_ancestor)
{
    const char *text = "{\n  \"a\": {\n    \"b\": [10, {\"c\": 1}]\n  }\n}";
    struct tg_conf_ctx ctx = {.file = "f.json"};

    ctx.pos = tg_jpos_build(text, strlen(text));
    cr_assert(not(zero(ptr, (void *)ctx.pos)));
    cr_assert(eq(int, tg_conf_error(&ctx, "a.b[1].c", "v %d", 1), TG_EINVAL));
    cr_assert(eq(str, ctx.err, "f.json:3:21: v 1 (at a.b[1].c)"));
    tg_conf_error(&ctx, "a.b[1].zz.y", "missing");
    cr_assert(eq(str, ctx.err, "f.json:3:15: missing (at a.b[1].zz.y)"));
    tg_conf_error(&ctx, "a.b[7]", "m");
    cr_assert(eq(str, ctx.err, "f.json:3:10: m (at a.b[7])"));
    tg_conf_error(&ctx, "nothing", "m");
    cr_assert(eq(str, ctx.err, "f.json:1:1: m (at nothing)"));
    tg_conf_error_key(&ctx, "a.b", "k");
    cr_assert(eq(str, ctx.err, "f.json:3:5: k (at a.b)"));
    tg_conf_error(&ctx, "", "root");
    cr_assert(eq(str, ctx.err, "f.json:1:1: root"));
    tg_jpos_free((struct tg_jpos *)ctx.pos);
    ctx.pos = NULL;
    tg_conf_error(&ctx, "a", "no index");
    cr_assert(eq(str, ctx.err, "f.json: no index (at a)"));
}

Test(conf, jpos_columns_count_characters_like_jansson)
{
    /* the same text with an invalid token where the value is: jansson's column for the token
     * must be the index's column for the value (both count UTF-8 characters, not bytes) */
    const char *good = "{\"\xc3\xa9t\xc3\xa9\": \"\xe2\x82\xac\", \"k\": 1}";
    const char *bad = "{\"\xc3\xa9t\xc3\xa9\": \"\xe2\x82\xac\", \"k\": x}";
    struct tg_jpos *pos = tg_jpos_build(good, strlen(good));
    json_error_t jerr;
    int line = 0, col = 0;

    cr_assert(zero(ptr, json_loads(bad, 0, &jerr)));
    cr_assert(eq(int, tg_jpos_find(pos, "k", &line, &col), TG_OK));
    cr_assert(eq(int, line, jerr.line));
    cr_assert(eq(int, col, jerr.column));
    cr_assert(eq(int, col, 19));
    tg_jpos_free(pos);
}

Test(conf, jpos_lines_end_at_newline_only)
{
    /* a '\r' takes a column, as in jansson; a tab is one column */
    const char *text = "{\r\n\t\"a\":\r 1}";
    struct tg_jpos *pos = tg_jpos_build(text, strlen(text));
    int line = 0, col = 0;

    cr_assert(eq(int, tg_jpos_find(pos, "a", &line, &col), TG_OK));
    cr_assert(eq(int, line, 2));
    cr_assert(eq(int, col, 8));
    cr_assert(eq(int, tg_jpos_find_key(pos, "a", &line, &col), TG_OK));
    cr_assert(eq(int, line, 2));
    cr_assert(eq(int, col, 2));
    tg_jpos_free(pos);
}

Test(conf, jpos_paths_and_escaping)
{
    const char *text = "{\"a.b\": {\"c\": [7, [8]]}, \"\": 1, \"q\\\"\\u0041\": {\"x[1]\": 2},"
                       " \"li\\u0073ten\": 3}";
    struct tg_jpos *pos = tg_jpos_build(text, strlen(text));
    char path[TG_JPATH_MAX];
    int line = 0, col = 0;

    cr_assert(eq(int, tg_jpos_find(pos, "", &line, &col), TG_OK));
    cr_assert(eq(int, col, 1));
    cr_assert(eq(int, tg_jpos_find(pos, "[\"a.b\"]", &line, &col), TG_OK));
    cr_assert(eq(int, col, 9));
    cr_assert(eq(int, tg_jpos_find(pos, "[\"a.b\"].c[1][0]", &line, &col), TG_OK));
    cr_assert(eq(int, col, 20));
    cr_assert(eq(int, tg_jpos_find(pos, "[\"\"]", &line, &col), TG_OK));
    cr_assert(eq(int, col, 30));
    cr_assert(eq(int, tg_jpos_find_key(pos, "[\"q\\\"A\"][\"x[1]\"]", &line, &col), TG_OK));
    cr_assert(eq(int, col, 47));
    cr_assert(eq(int, tg_jpos_find(pos, "listen", &line, &col), TG_OK));
    cr_assert(eq(int, tg_jpos_find(pos, "a.b", &line, &col), TG_EINVAL));
    /* the builders spell paths the same way */
    tg_jpos_path_key(path, sizeof(path), "", "a.b");
    cr_assert(eq(str, path, "[\"a.b\"]"));
    tg_jpos_path_key(path, sizeof(path), "[\"a.b\"]", "c");
    cr_assert(eq(str, path, "[\"a.b\"].c"));
    tg_jpos_path_key(path, sizeof(path), "", "");
    cr_assert(eq(str, path, "[\"\"]"));
    tg_jpos_path_key(path, sizeof(path), "x", "q\"A");
    cr_assert(eq(str, path, "x[\"q\\\"A\"]"));
    tg_jpos_path_key(path, sizeof(path), "x", "a\nb");
    cr_assert(eq(str, path, "x[\"a\\u000ab\"]"));
    tg_jpos_path_index(path, sizeof(path), "r", 12);
    cr_assert(eq(str, path, "r[12]"));
    tg_jpos_path_index(path, 4, "r", 12);
    cr_assert(eq(str, path, "r[1"));
    tg_jpos_free(pos);
}

Test(conf, jpos_first_dup)
{
    const char *text = "{\"a\": {\"x\": 1}, \"b\": 2, \"a\": {\"x\": 3}, \"b\": 4}";
    struct tg_jpos *pos = tg_jpos_build(text, strlen(text));
    const char *path = NULL;
    int line = 0, col = 0;

    cr_assert(eq(int, tg_jpos_first_dup(pos, &path, &line, &col), TG_OK));
    cr_assert(eq(str, (char *)path, "a"));
    cr_assert(eq(int, col, 25));
    tg_jpos_free(pos);
    pos = tg_jpos_build("[{\"a\": 1}, {\"a\": 1}]", 20);
    cr_assert(eq(int, tg_jpos_first_dup(pos, &path, &line, &col), TG_EINVAL));
    tg_jpos_free(pos);
}

Test(conf, jpos_quote_cuts_long_text)
{
    char out[128];
    char s[80];

    memset(s, 'x', 70);
    s[70] = '\0';
    tg_jpos_quote(out, sizeof(out), s);
    cr_assert(eq(sz, strlen(out), 64 + 2 + 3));
    cr_assert(eq(str, out + 64 + 1, "\"..."));
    tg_jpos_quote(out, sizeof(out), "a\"b\\c\x01");
    cr_assert(eq(str, out, "\"a\\\"b\\\\c\\u0001\""));
    tg_jpos_quote(out, 4, "abcdef");
    cr_assert(eq(str, out, "\"ab"));
}

static void load_file(const char *rel, size_t n_routes)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;

    snprintf(file, sizeof(file), "%s/%s", TG_SOURCE_DIR, rel);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK),
              "%s", err);
    cr_assert(eq(sz, tg_route_table_count(conf->routes), n_routes));
    tg_conf_unref(conf);
}

Test(conf, shipped_confs_load)
{
    load_file("conf/tracegate.json", 8);
    load_file("conf/examples/minimal.json", 1);
    /* every key: the info route came with "local": "info", the status route with durable */
    load_file("conf/examples/full.json", 8);
}

Test(conf, full_example_sets_the_operations_keys)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;

    snprintf(file, sizeof(file), "%s/conf/examples/full.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK),
              "%s", err);
    cr_assert(eq(str, conf->admin_host, "127.0.0.1"));
    cr_assert(eq(u32, conf->admin_port, 9901));
    cr_assert(eq(str, conf->otlp_endpoint, "http://otel-collector:4318"));
    cr_assert(eq(dbl, conf->otlp_sample_ratio, 0.25));
    cr_assert(eq(u32, conf->otlp_batch_size, 512));
    cr_assert(not(conf->reuse_port));
    tg_conf_unref(conf);
}

Test(conf, full_example_sets_the_stream_keys)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;

    snprintf(file, sizeof(file), "%s/conf/examples/full.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK),
              "%s", err);
    cr_assert(eq(sz, conf->stream_above_bytes, 1048576));
    cr_assert(eq(sz, conf->stream_buffer_bytes, 262144));
    cr_assert(eq(u32, conf->stream_idle_timeout_ms, 30000));
    cr_assert(not(proxy_of(tg_route_table_at(conf->routes, 0))->stream),
              "submit is durable: held whole");
    cr_assert(eq(u32, proxy_of(tg_route_table_at(conf->routes, 3))->stream_idle_timeout_ms, 60000));
    tg_conf_unref(conf);
}

Test(conf, demo_conf_values)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;
    const struct tg_route *r;

    snprintf(file, sizeof(file), "%s/conf/tracegate.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK));
    cr_assert(eq(u32, conf->port, 8080));
    cr_assert(eq(str, conf->trace_header, "X-Trace-Id"));
    cr_assert(eq(sz, conf->n_trace_accept, 2));
    cr_assert(eq(str, tg_conf_upstream_get(conf, "questionnaire")->url, "http://127.0.0.1:9101"));
    cr_assert(eq(str, tg_conf_upstream_get(conf, "patient")->url, "http://127.0.0.1:9102"));
    cr_assert(eq(str, tg_conf_upstream_get(conf, "history")->url, "http://127.0.0.1:9103"));
    r = tg_route_table_at(conf->routes, 0);
    cr_assert(eq(str, r->path, "/submit"));
    cr_assert(eq(str, proxy_of(r)->upstream_path, "/questionnaires/submissions"));
    cr_assert(eq(u32, r->policy.timeout_ms, 5000));
    cr_assert(not(r->policy.cancel_on_disconnect));
    r = tg_route_table_at(conf->routes, 2);
    cr_assert(eq(ptr, (void *)r->policy.handler, (void *)&tg_handler_fanout));
    cr_assert(eq(u32, r->policy.timeout_ms, 3000));
    cr_assert(eq(sz, fanout_of(r)->n_backends, 2));
    cr_assert(fanout_of(r)->backends[0].required);
    cr_assert(not(fanout_of(r)->backends[1].required));
    cr_assert(eq(u32, fanout_of(r)->backends[1].timeout_ms, 2000));
    tg_conf_unref(conf);
}

Test(conf, connection_buffer_bytes_default_and_range)
{
    struct tg_conf *conf = load_ok("{}");

    cr_assert(eq(sz, conf->connection_buffer_bytes, 8192));
    cr_assert(eq(sz, conf->max_header_bytes, 8192 - TG_HEAD_RESERVE));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"connection_buffer_bytes\": 4096}}");
    cr_assert(eq(sz, conf->connection_buffer_bytes, 4096));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"connection_buffer_bytes\": 1048576}}");
    cr_assert(eq(sz, conf->connection_buffer_bytes, 1048576));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"limits\": {\"connection_buffer_bytes\": 4095}}",
               "1:40: expected an integer in 4096..1048576, got 4095 "
               "(at limits.connection_buffer_bytes)");
    teardown();
    expect_err("{\"limits\": {\"connection_buffer_bytes\": 1048577}}",
               "1:40: expected an integer in 4096..1048576, got 1048577 "
               "(at limits.connection_buffer_bytes)");
    teardown();
}

Test(conf, max_header_bytes_leaves_room_for_the_answer)
{
    struct tg_conf *conf = load_ok("{\"limits\": {\"connection_buffer_bytes\": 16384}}");

    cr_assert(eq(sz, conf->max_header_bytes, 16384 - TG_HEAD_RESERVE));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"max_header_bytes\": 6144}}");
    cr_assert(eq(sz, conf->max_header_bytes, 6144));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"max_header_bytes\": 1024}}");
    cr_assert(eq(sz, conf->max_header_bytes, 1024));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"limits\": {\"max_header_bytes\": 6145}}",
               "1:33: 6145 leaves no room for the answer's head in a connection buffer of 8192 "
               "bytes: at most 6144 (or raise limits.connection_buffer_bytes) "
               "(at limits.max_header_bytes)");
    teardown();
    expect_err("{\"limits\": {\"max_header_bytes\": 1023}}",
               "1:33: expected an integer in 1024..1073741824, got 1023 "
               "(at limits.max_header_bytes)");
    teardown();
}

Test(conf, stream_limits_default_and_range)
{
    struct tg_conf *conf = load_ok("{}");

    cr_assert(eq(sz, conf->stream_above_bytes, 1048576));
    cr_assert(eq(sz, conf->stream_buffer_bytes, 131072));
    cr_assert(eq(u32, conf->stream_idle_timeout_ms, 30000));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"stream_above_bytes\": 0, \"stream_buffer_bytes\": 32768,"
                   " \"stream_idle_timeout_ms\": 1}}");
    cr_assert(eq(sz, conf->stream_above_bytes, 0));
    cr_assert(eq(sz, conf->stream_buffer_bytes, 32768));
    cr_assert(eq(u32, conf->stream_idle_timeout_ms, 1));
    tg_conf_unref(conf);
    teardown();
    conf = load_ok("{\"limits\": {\"stream_above_bytes\": 1073741824, \"stream_buffer_bytes\":"
                   " 16777216, \"stream_idle_timeout_ms\": 3600000}}");
    cr_assert(eq(sz, conf->stream_above_bytes, 1073741824));
    cr_assert(eq(sz, conf->stream_buffer_bytes, 16777216));
    tg_conf_unref(conf);
    teardown();
    expect_err("{\"limits\": {\"stream_buffer_bytes\": 32767}}",
               "1:36: expected an integer in 32768..16777216, got 32767 "
               "(at limits.stream_buffer_bytes)");
    teardown();
    expect_err("{\"limits\": {\"stream_above_bytes\": 1073741825}}",
               "1:35: expected an integer in 0..1073741824, got 1073741825 "
               "(at limits.stream_above_bytes)");
    teardown();
    expect_err("{\"limits\": {\"stream_idle_timeout_ms\": 0}}",
               "1:39: expected an integer in 1..3600000, got 0 "
               "(at limits.stream_idle_timeout_ms)");
    teardown();
}

Test(conf, admin_listens_on_loopback_9901_unless_told)
{
    struct tg_conf *conf = load_ok("{}");

    cr_assert(eq(str, conf->admin_host, "127.0.0.1"));
    cr_assert(eq(u32, conf->admin_port, 9901));
    tg_conf_unref(conf);
    conf = load_ok("{\"admin\": {\"listen\": \"[::1]:9000\"}}");
    cr_assert(eq(str, conf->admin_host, "::1"));
    cr_assert(eq(u32, conf->admin_port, 9000));
    tg_conf_unref(conf);
    conf = load_ok("{\"admin\": {\"listen\": \"off\"}}");
    cr_assert(zero(ptr, conf->admin_host));
    tg_conf_unref(conf);
}

Test(conf, admin_errors_name_the_key)
{
    expect_err("{\"admin\":\n{\"listen\": \"localhost:1\"}}",
               "2:12: bad listen address \"localhost:1\": expected \"IPv4:port\" or "
               "\"[IPv6]:port\" with a numeric address and a port in 0..65535 (at admin.listen)");
    expect_err("{\"admin\":\n{\"port\": 1}}", "2:2: unknown key \"port\" (at admin.port)");
}

Test(conf, checksum_is_the_sha256_of_the_file)
{
    struct tg_conf *conf = load_ok("{}");

    /* sha256("{}") */
    cr_assert(eq(str, conf->checksum,
                 "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
    cr_assert(gt(u64, conf->loaded_us, 1600000000000000u));
    tg_conf_unref(conf);
}
