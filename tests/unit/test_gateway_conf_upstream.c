/* Unit tests for gateway/conf_upstream.c: the upstreams section (targets, balance, TLS, outlier
 * detection, health checks, breaker, retry budget), "ready", the route "retry" key
 * (routes/conf_check.c), and how a conf binds to the shared state a reload keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/pool.h"
#include "gateway/retry.h"
#include "routes/proxy.h"
#include "routes/table.h"
#include "tests/support/unit/tmpconf.h"

static void teardown(void)
{
    tmpconf_remove();
}

TestSuite(conf_upstream, .fini = teardown, .timeout = 10);

static struct tg_conf *load_ok(const char *text)
{
    char err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;
    int rc = tg_conf_load(tmpconf_write("up", text), tg_route_table_load, &conf, err, sizeof(err));

    cr_assert(eq(int, rc, TG_OK), "unexpected error: %s", err);
    return conf;
}

/* Loads text, which must fail with "<file>:<want>". */
static void expect_err(const char *text, const char *want)
{
    char err[TG_CONF_ERR_MAX] = "", full[TG_CONF_ERR_MAX + 600];
    struct tg_conf *conf = NULL;
    const char *file = tmpconf_write("up", text);
    int rc = tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err));

    snprintf(full, sizeof(full), "%s:%s", file, want);
    cr_assert(rc == TG_EINVAL && conf == NULL, "rc %d, wanted %s", rc, want);
    cr_assert(eq(str, err, full));
}

Test(conf_upstream, url_is_one_target_with_every_default)
{
    struct tg_conf *conf = load_ok("{\"upstreams\": {\"a\": {\"url\": \"http://h:1/base/\"}}}");
    const struct tg_upstream *u = &conf->upstreams[0];

    cr_assert(eq(sz, u->n_targets, 1));
    cr_assert(eq(str, u->targets[0].url, "http://h:1"));
    cr_assert(eq(u32, u->targets[0].weight, 1));
    cr_assert(eq(str, u->url, "http://h:1"));
    cr_assert(eq(str, u->base_path, "/base"));
    cr_assert(eq(int, u->balance, TG_BALANCE_LEAST_REQUEST));
    cr_assert(u->tls.verify);
    cr_assert(zero(ptr, u->tls.ca_file));
    cr_assert(zero(ptr, u->tls.server_name));
    cr_assert(eq(u32, u->outlier.consecutive, 5));
    cr_assert(eq(u32, u->outlier.base_ms, 30000));
    cr_assert(eq(u32, u->outlier.max_ms, 300000));
    cr_assert(eq(u32, u->outlier.max_percent, 50));
    cr_assert(not(u->hc.on));
    cr_assert(u->breaker.on);
    cr_assert(eq(dbl, u->breaker.k, 1.5));
    cr_assert(eq(u32, u->breaker.window_ms, 10000));
    cr_assert(eq(u32, u->breaker.min_requests, 5));
    cr_assert(eq(u32, u->budget.percent, 20));
    cr_assert(eq(u32, u->budget.min, 3));
    cr_assert(not(zero(ptr, u->pool)));
    cr_assert(not(zero(ptr, u->targets[0].state)));
    tg_conf_unref(conf);
}

Test(conf_upstream, targets_with_weights_and_every_key)
{
    struct tg_conf *conf = load_ok(
        "{\"upstreams\": {\"q\": {\n"
        "  \"targets\": [\"http://a:1/v1\", {\"url\": \"https://b:2/v1/\", \"weight\": 3}],\n"
        "  \"balance\": \"round_robin\",\n"
        "  \"tls\": {\"ca_file\": \"ca.pem\", \"cert\": \"/abs/c.pem\", \"key\": \"k.pem\",\n"
        "          \"verify\": false, \"server_name\": \"q.internal\"},\n"
        "  \"outlier\": {\"consecutive_failures\": 7, \"base_ejection_ms\": 100,\n"
        "              \"max_ejection_ms\": 1000, \"max_ejected_percent\": 30},\n"
        "  \"health_check\": {\"path\": \"/health?deep=1\", \"method\": \"HEAD\",\n"
        "    \"interval_ms\": 200, \"idle_interval_ms\": 900, \"timeout_ms\": 50,\n"
        "    \"unhealthy_threshold\": 4, \"healthy_threshold\": 1,\n"
        "    \"expected_statuses\": [200, 204]},\n"
        "  \"breaker\": {\"enabled\": false, \"k\": 2, \"window_ms\": 5000, \"min_requests\": 9},\n"
        "  \"retry_budget\": {\"percent\": 10, \"min\": 1}\n"
        "}}}");
    const struct tg_upstream *u = &conf->upstreams[0];
    const char *dir_end = strrchr(tmpconf_path(), '/');
    char ca[512];

    cr_assert(eq(sz, u->n_targets, 2));
    cr_assert(eq(str, u->targets[0].url, "http://a:1"));
    cr_assert(eq(str, u->targets[1].url, "https://b:2"));
    cr_assert(eq(u32, u->targets[1].weight, 3));
    cr_assert(eq(str, u->base_path, "/v1"));
    cr_assert(eq(int, u->balance, TG_BALANCE_ROUND_ROBIN));
    snprintf(ca, sizeof(ca), "%.*sca.pem", (int)(dir_end - tmpconf_path() + 1), tmpconf_path());
    cr_assert(eq(str, u->tls.ca_file, ca), "relative to the conf's directory");
    cr_assert(eq(str, u->tls.cert, "/abs/c.pem"));
    cr_assert(not(u->tls.verify));
    cr_assert(eq(str, u->tls.server_name, "q.internal"));
    cr_assert(eq(u32, u->outlier.consecutive, 7));
    cr_assert(eq(u32, u->outlier.base_ms, 100));
    cr_assert(eq(u32, u->outlier.max_ms, 1000));
    cr_assert(eq(u32, u->outlier.max_percent, 30));
    cr_assert(u->hc.on);
    cr_assert(eq(str, u->hc.path, "/health?deep=1"));
    cr_assert(eq(str, u->hc.method, "HEAD"));
    cr_assert(eq(u32, u->hc.interval_ms, 200));
    cr_assert(eq(u32, u->hc.idle_interval_ms, 900));
    cr_assert(eq(u32, u->hc.timeout_ms, 50));
    cr_assert(eq(u32, u->hc.unhealthy, 4));
    cr_assert(eq(u32, u->hc.healthy, 1));
    cr_assert(tg_status_set_has(&u->hc.expect, 204));
    cr_assert(not(tg_status_set_has(&u->hc.expect, 201)));
    cr_assert(not(u->breaker.on));
    cr_assert(eq(dbl, u->breaker.k, 2.0));
    cr_assert(eq(u32, u->breaker.window_ms, 5000));
    cr_assert(eq(u32, u->breaker.min_requests, 9));
    cr_assert(eq(u32, u->budget.percent, 10));
    cr_assert(eq(u32, u->budget.min, 1));
    tg_conf_unref(conf);
}

Test(conf_upstream, health_check_defaults)
{
    struct tg_conf *conf = load_ok(
        "{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"health_check\": {\"path\": \"/h\"}}}}");
    const struct tg_health_check *hc = &conf->upstreams[0].hc;

    cr_assert(hc->on);
    cr_assert(eq(str, hc->method, "GET"));
    cr_assert(eq(u32, hc->interval_ms, 5000));
    cr_assert(eq(u32, hc->idle_interval_ms, 60000));
    cr_assert(eq(u32, hc->timeout_ms, 1000));
    cr_assert(eq(u32, hc->unhealthy, 3));
    cr_assert(eq(u32, hc->healthy, 2));
    cr_assert(tg_status_set_has(&hc->expect, 200));
    cr_assert(tg_status_set_has(&hc->expect, 399));
    cr_assert(not(tg_status_set_has(&hc->expect, 199)));
    cr_assert(not(tg_status_set_has(&hc->expect, 400)));
    tg_conf_unref(conf);
}

Test(conf_upstream, errors_name_file_line_column_and_path)
{
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\",\n\"targets\": [\"http://i\"]}}}",
               "2:1: \"url\" and \"targets\" exclude each other: \"url\" is the one-target "
               "shorthand (at upstreams.a.targets)");
    expect_err("{\"upstreams\": {\"a\": {\n\"targets\": []}}}",
               "2:12: expected an array of 1..32 targets (at upstreams.a.targets)");
    expect_err("{\"upstreams\": {\"a\": {\"targets\": [\"http://i\",\n 7]}}}",
               "2:2: expected a url or an object, got an integer (at upstreams.a.targets[1])");
    expect_err(
        "{\"upstreams\": {\"a\": {\"targets\": [\n{\"url\": \"http://i\", \"weight\": 0}]}}}",
        "2:31: expected an integer in 1..100, got 0 (at upstreams.a.targets[0].weight)");
    expect_err("{\"upstreams\": {\"a\": {\"targets\": [\"http://i\",\n\"http://i/\"]}}}",
               "2:1: duplicate target \"http://i\" (also targets[0]) (at upstreams.a.targets[1])");
    expect_err("{\"upstreams\": {\"a\": {\"targets\": [\"http://i/x\",\n\"http://j/y\"]}}}",
               "2:1: bad url \"http://j/y\": every target of an upstream has the same base path "
               "(the first has \"/x\") (at upstreams.a.targets[1])");
    expect_err("{\"upstreams\": {\"a\": {\"targets\": [\n{\"url\": \"ftp://i\"}]}}}",
               "2:9: bad url \"ftp://i\": expected http:// or https:// "
               "(at upstreams.a.targets[0].url)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\",\n\"balance\": \"random\"}}}",
               "2:12: unknown balance \"random\": expected \"least_request\" or \"round_robin\" "
               "(at upstreams.a.balance)");
}

Test(conf_upstream, tls_errors)
{
    expect_err(
        "{\"upstreams\": {\"a\": {\"url\": \"https://h\",\n\"tls\": {\"cert\": \"c.pem\"}}}}",
        "2:8: \"cert\" and \"key\" go together (mutual TLS) (at upstreams.a.tls)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"https://h\", \"tls\": {\n"
               "\"server_name\": \"a b\"}}}}",
               "2:16: bad server_name \"a b\": expected a DNS name (letters, digits, '.', '-') "
               "(at upstreams.a.tls.server_name)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"https://h\", \"tls\": {\n\"verfy\": false}}}}",
               "2:1: unknown key \"verfy\", did you mean \"verify\"? (at upstreams.a.tls.verfy)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"https://h\", \"tls\": {\n\"verify\": 0}}}}",
               "2:11: expected true or false, got an integer (at upstreams.a.tls.verify)");
}

Test(conf_upstream, outlier_breaker_budget_and_check_errors)
{
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"outlier\": {\n"
               "\"base_ejection_ms\": 500, \"max_ejection_ms\": 100}}}}",
               "2:45: max_ejection_ms (100) is below base_ejection_ms (500) "
               "(at upstreams.a.outlier.max_ejection_ms)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"outlier\": {\n"
               "\"max_ejected_percent\": 101}}}}",
               "2:24: expected an integer in 0..100, got 101 "
               "(at upstreams.a.outlier.max_ejected_percent)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"breaker\": {\n\"k\": 0.5}}}}",
               "2:6: expected a number in 1..100, got 0.5 (at upstreams.a.breaker.k)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"breaker\": {\n\"k\": \"1.5\"}}}}",
               "2:6: expected a number in 1..100, got a string (at upstreams.a.breaker.k)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"retry_budget\": {\n"
               "\"ratio\": 1}}}}",
               "2:1: unknown key \"ratio\" (at upstreams.a.retry_budget.ratio)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\",\n\"health_check\": {}}}}",
               "2:17: missing required key \"path\" (at upstreams.a.health_check)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"health_check\": {\n"
               "\"path\": \"health\"}}}}",
               "2:9: bad path \"health\": expected '/' then visible ASCII characters "
               "(at upstreams.a.health_check.path)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"health_check\": {\"path\": "
               "\"/h\",\n\"expected_statuses\": [200, 600]}}}}",
               "2:28: expected a status 100..599 "
               "(at upstreams.a.health_check.expected_statuses[1])");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\", \"health_check\": {\"path\": "
               "\"/h\",\n\"interval_ms\": 5}}}}",
               "2:16: expected an integer in 10..3600000, got 5 "
               "(at upstreams.a.health_check.interval_ms)");
}

Test(conf_upstream, ready_requires_known_upstreams)
{
    struct tg_conf *conf = load_ok("{\"upstreams\": {\"a\": {\"url\": \"http://h\"}, \"b\": "
                                   "{\"url\": \"http://i\"}}, \"ready\": {\"requires\": [\"b\"]}}");

    cr_assert(eq(sz, conf->n_ready_requires, 1));
    cr_assert(eq(ptr, (void *)conf->ready_requires[0], &conf->upstreams[1]));
    tg_conf_unref(conf);
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\"}},\n"
               "\"ready\": {\"requires\": [\"a\", \"zz\"]}}",
               "2:29: unknown upstream \"zz\" (at ready.requires[1])");
    expect_err("{\"ready\": {\n\"requries\": []}}",
               "2:1: unknown key \"requries\", did you mean \"requires\"? (at ready.requries)");
}

Test(conf_upstream, route_retry_defaults_and_keys)
{
    struct tg_conf *conf = load_ok(
        "{\"upstreams\": {\"a\": {\"url\": \"http://h\"}}, \"routes\": [\n"
        "{\"method\": \"GET\", \"path\": \"/d\", \"upstream\": \"a\"},\n"
        "{\"method\": \"GET\", \"path\": \"/r\", \"upstream\": \"a\", \"retry\": "
        "{\"max_attempts\": "
        "3, \"per_try_timeout_ms\": 80, \"retry_on\": [\"timeout\", 500, 429]}},\n"
        "{\"method\": \"GET\", \"path\": \"/n\", \"upstream\": \"a\", \"retry\": {\"retry_on\": "
        "[]}}]}");
    const struct tg_proxy_conf *d = tg_route_table_at(conf->routes, 0)->policy.handler_conf;
    const struct tg_proxy_conf *r = tg_route_table_at(conf->routes, 1)->policy.handler_conf;
    const struct tg_proxy_conf *n = tg_route_table_at(conf->routes, 2)->policy.handler_conf;

    cr_assert(eq(u32, d->retry.max_attempts, 2));
    cr_assert(eq(u32, d->retry.per_try_timeout_ms, 0));
    cr_assert(eq(u32, d->retry.on, TG_RETRY_CONNECT | TG_RETRY_RESET));
    cr_assert(tg_status_set_has(&d->retry.statuses, 502));
    cr_assert(tg_status_set_has(&d->retry.statuses, 503));
    cr_assert(tg_status_set_has(&d->retry.statuses, 504));
    cr_assert(not(tg_status_set_has(&d->retry.statuses, 500)));
    cr_assert(eq(u32, r->retry.max_attempts, 3));
    cr_assert(eq(u32, r->retry.per_try_timeout_ms, 80));
    cr_assert(eq(u32, r->retry.on, TG_RETRY_TIMEOUT));
    cr_assert(tg_status_set_has(&r->retry.statuses, 500));
    cr_assert(tg_status_set_has(&r->retry.statuses, 429));
    cr_assert(not(tg_status_set_has(&r->retry.statuses, 502)));
    cr_assert(eq(u32, n->retry.on, 0));
    cr_assert(not(tg_status_set_has(&n->retry.statuses, 502)));
    tg_conf_unref(conf);
}

Test(conf_upstream, route_retry_errors)
{
    expect_err(
        "{\"upstreams\": {\"a\": {\"url\": \"http://h\"}}, \"routes\": [{\"method\": "
        "\"GET\", \"path\": \"/r\", \"upstream\": \"a\",\n\"retry\": {\"max_attempts\": 0}}]}",
        "2:27: expected an integer in 1..10, got 0 (at routes[0].retry.max_attempts)");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\"}}, \"routes\": [{\"method\": "
               "\"GET\", \"path\": \"/r\", \"upstream\": \"a\",\n\"retry\": {\"retry_on\": "
               "[\"reset\", 302]}}]}",
               "2:33: bad retry_on entry an integer: expected \"connect-failure\", \"reset\", "
               "\"timeout\" or a status 400..599 (at routes[0].retry.retry_on[1])");
    expect_err("{\"upstreams\": {\"a\": {\"url\": \"http://h\"}}, \"routes\": [{\"method\": "
               "\"GET\", \"path\": \"/r\", \"upstream\": \"a\",\n\"retry\": {\"retry_on\": "
               "[\"5xx\"]}}]}",
               "2:24: bad retry_on entry \"5xx\": expected \"connect-failure\", \"reset\", "
               "\"timeout\" or a status 400..599 (at routes[0].retry.retry_on[0])");
    expect_err("{\"routes\": [{\"method\": \"GET\", \"path\": \"/r\", \"local\": \"health\",\n"
               "\"retry\": {}}]}",
               "2:1: \"retry\" is only for routes with \"upstream\" (at routes[0].retry)");
}

/* A reload binds the upstreams and targets it keeps to the same state objects. */
Test(conf_upstream, a_new_conf_finds_the_state_of_the_old)
{
    struct tg_conf *a = load_ok("{\"upstreams\": {\"q\": {\"targets\": [\"http://a:1\", "
                                "\"http://b:2\"]}}}");
    struct tg_conf *b = load_ok("{\"upstreams\": {\"q\": {\"targets\": [\"http://b:2\", "
                                "\"http://c:3\"], \"timeout_ms\": 9}}}");
    struct tg_target_state *kept = a->upstreams[0].targets[1].state;

    cr_assert(eq(ptr, a->upstreams[0].pool, b->upstreams[0].pool));
    cr_assert(eq(ptr, kept, b->upstreams[0].targets[0].state));
    cr_assert(ne(ptr, a->upstreams[0].targets[0].state, b->upstreams[0].targets[1].state));
    atomic_store(&kept->ejected_until_us, 12345);
    tg_conf_unref(a);
    /* the old conf is gone; b still holds what they shared, with its state */
    cr_assert(eq(u64, atomic_load(&b->upstreams[0].targets[0].state->ejected_until_us), 12345));
    tg_conf_unref(b);
}

/* Same url under two upstreams: two targets with their own health. */
Test(conf_upstream, state_is_per_upstream_and_url)
{
    struct tg_conf *c = load_ok("{\"upstreams\": {\"p\": {\"url\": \"http://a:1\"}, "
                                "\"q\": {\"url\": \"http://a:1\"}}}");

    cr_assert(ne(ptr, c->upstreams[0].targets[0].state, c->upstreams[1].targets[0].state));
    cr_assert(ne(ptr, c->upstreams[0].pool, c->upstreams[1].pool));
    tg_conf_unref(c);
}

/* conf/examples/full.json uses every key of this section: they arrive as written. */
Test(conf_upstream, the_full_example_uses_every_key)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    struct tg_conf *conf = NULL;
    const struct tg_upstream *u;
    const struct tg_proxy_conf *submit;

    snprintf(file, sizeof(file), "%s/conf/examples/full.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK),
              "%s", err);
    u = tg_conf_upstream_get(conf, "questionnaire");
    cr_assert(eq(sz, u->n_targets, 3));
    cr_assert(eq(u32, u->targets[0].weight, 2));
    cr_assert(eq(str, u->base_path, "/v1"));
    cr_assert(eq(str, u->tls.server_name, "questionnaire.internal"));
    cr_assert(not(zero(ptr, strstr(u->tls.ca_file, "/tls/hospital-ca.pem"))));
    cr_assert(u->hc.on);
    cr_assert(tg_status_set_has(&u->hc.expect, 204));
    cr_assert(eq(u32, u->max_in_flight, 512));
    cr_assert(eq(sz, conf->n_ready_requires, 1));
    cr_assert(eq(ptr, (void *)conf->ready_requires[0], (void *)u));
    cr_assert(eq(int, tg_conf_upstream_get(conf, "patient")->balance, TG_BALANCE_ROUND_ROBIN));
    submit = tg_route_table_at(conf->routes, 0)->policy.handler_conf;
    cr_assert(eq(u32, submit->retry.on, TG_RETRY_CONNECT));
    cr_assert(not(tg_status_set_has(&submit->retry.statuses, 503)));
    tg_conf_unref(conf);
}
