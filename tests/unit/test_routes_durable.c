/* Unit tests for the durable block (routes/durable_conf.c) and the status route
 * (routes/submission.c) as the conf loads them: defaults, every key, the checks that keep a
 * wrong one out (with FILE:LINE:COL and the JSON path), the link between the two routes; and
 * the small rules the rest reads: the Idempotency-Key's syntax, how an attempt's outcome is
 * judged, the full-jitter backoff. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/stats.h"
#include "routes/durable.h"
#include "routes/proxy.h"
#include "routes/table.h"
#include "spool/store.h"
#include "tests/support/unit/tmpconf.h"

#define HEAD                                    \
    "{\"spool\": {\"path\": \"spool/x.db\"},\n" \
    "\"upstreams\": {\"q\": {\"url\": \"http://127.0.0.1:1\"}},\n\"routes\": [\n"
#define STATUS \
    ",\n{\"method\": \"GET\", \"path\": \"/submissions/{id}\", \"submissions\": \"submit\"}"
#define SUBMIT(durable)                                                                         \
    "{\"name\": \"submit\", \"method\": \"POST\", \"path\": \"/submit\", \"upstream\": \"q\", " \
    "\"durable\": " durable "}"

static struct tg_conf *conf;

static void teardown(void)
{
    tg_conf_unref(conf);
    conf = NULL;
    tmpconf_remove();
}

TestSuite(durable_conf, .fini = teardown, .timeout = 10);

static int load(const char *head, const char *routes, char *err, size_t errlen)
{
    static char text[16384];

    snprintf(text, sizeof(text), "%s%s\n]}", head, routes);
    tg_conf_unref(conf);
    conf = NULL;
    return tg_conf_load(tmpconf_write("durable", text), tg_route_table_load, &conf, err, errlen);
}

static const struct tg_durable_conf *load_ok(const char *routes)
{
    char err[TG_CONF_ERR_MAX] = "";

    cr_assert(eq(int, load(HEAD, routes, err, sizeof(err)), TG_OK), "%s", err);
    return tg_durable_of(conf->routes, "submit", NULL);
}

/* Must fail with an error holding want (the message) and at (the path). */
static void expect_err(const char *head, const char *routes, const char *want, const char *at)
{
    char err[TG_CONF_ERR_MAX] = "";

    cr_assert(eq(int, load(head, routes, err, sizeof(err)), TG_EINVAL), "loaded: %s", routes);
    cr_expect(not(zero(ptr, strstr(err, want))), "%s\nwanted: %s", err, want);
    cr_expect(not(zero(ptr, strstr(err, at))), "%s\nwanted at: %s", err, at);
    cr_expect(not(zero(ptr, strstr(err, tmpconf_path()))), "%s", err);
}

Test(durable_conf, defaults)
{
    const struct tg_durable_conf *dc = load_ok(SUBMIT("{}") STATUS);

    cr_assert(not(zero(ptr, (void *)dc)));
    cr_expect(eq(int, dc->mode, TG_DURABLE_ON_FAILURE));
    cr_expect(eq(u32, dc->sync_wait_ms, 3000));
    cr_expect(dc->require_key);
    cr_expect(dc->backend_dedup);
    cr_expect(not(dc->hold_dead));
    cr_expect(eq(str, dc->forward_key_as, "Idempotency-Key"));
    cr_expect(zero(ptr, dc->key_scope_header));
    cr_expect(eq(sz, dc->n_store_headers, 2));
    cr_expect(eq(sz, dc->n_duplicate_status, 0));
    cr_expect(eq(u32, dc->retry.base_ms, 1000));
    cr_expect(eq(u32, dc->retry.cap_ms, 300000));
    cr_expect(eq(u32, dc->retry.max_age_s, 259200));
    cr_expect(eq(sz, dc->retry.n_on_status, 7));
    cr_expect(eq(u32, dc->delivery_concurrency, 4));
    cr_expect(eq(u32, dc->drain_rps, 20));
    cr_expect(eq(str, (char *)dc->status_path, "/submissions/{id}"), "linked to its status route");
}

Test(durable_conf, every_key)
{
    const struct tg_durable_conf *dc = load_ok(SUBMIT(
        "{\"mode\": \"always\", \"sync_wait_ms\": 100, \"require_key\": false, "
        "\"forward_key_as\": \"X-Idempotency-Key\", \"key_scope_header\": \"X-Patient-Id\", "
        "\"order_by_header\": \"X-Patient-Id\", \"on_dead\": \"hold\", \"backend_dedup\": false, "
        "\"duplicate_status\": [409], \"store_headers\": [\"Content-Type\", \"X-Patient-Id\", "
        "\"Accept-Language\"], \"retry\": {\"base_ms\": 50, \"cap_ms\": 5000, \"max_age_s\": 60, "
        "\"attempt_timeout_ms\": 2000, \"on_status\": [429]}, \"delivery_concurrency\": 2, "
        "\"drain_rps\": 5}") STATUS);

    cr_expect(eq(int, dc->mode, TG_DURABLE_ALWAYS));
    cr_expect(not(dc->require_key));
    cr_expect(eq(str, dc->forward_key_as, "X-Idempotency-Key"));
    cr_expect(eq(str, dc->order_by_header, "X-Patient-Id"));
    cr_expect(dc->hold_dead);
    cr_expect(not(dc->backend_dedup));
    cr_expect(eq(int, dc->duplicate_status[0], 409));
    cr_expect(eq(sz, dc->n_store_headers, 3));
    cr_expect(eq(u32, dc->retry.attempt_timeout_ms, 2000));
    cr_expect(eq(sz, dc->retry.n_on_status, 1));
    cr_expect(eq(u32, dc->drain_rps, 5));
}

Test(durable_conf, what_keeps_a_wrong_block_out)
{
    expect_err(HEAD, SUBMIT("{\"mode\": \"later\"}") STATUS,
               "unknown mode \"later\": expected \"on_failure\" or \"always\"",
               "(at routes[0].durable.mode)");
    expect_err(HEAD, SUBMIT("{\"retries\": 3}") STATUS, "unknown key \"retries\"",
               "(at routes[0].durable.retries)");
    expect_err(HEAD, SUBMIT("{\"retry\": {\"base_ms\": 500, \"cap_ms\": 100}}") STATUS,
               "cap_ms (100) is below base_ms (500)", "(at routes[0].durable.retry.cap_ms)");
    expect_err(HEAD, SUBMIT("{\"retry\": {\"on_status\": [200]}}") STATUS,
               "expected an integer in 400..599", "(at routes[0].durable.retry.on_status[0])");
    expect_err(HEAD, SUBMIT("{\"key_scope_header\": \"X Patient\"}") STATUS, "bad header name",
               "(at routes[0].durable.key_scope_header)");
    expect_err(HEAD, SUBMIT("{\"sync_wait_ms\": 5000}") STATUS,
               "sync_wait_ms (5000) must be below the route's timeout_ms (5000)",
               "(at routes[0].durable.sync_wait_ms)");
    expect_err(HEAD, SUBMIT("{\"on_dead\": \"drop\"}") STATUS, "unknown on_dead \"drop\"",
               "(at routes[0].durable.on_dead)");
}

Test(durable_conf, only_a_post_route_with_a_spool_and_a_status_route)
{
    expect_err(HEAD,
               "{\"name\": \"submit\", \"method\": \"PUT\", \"path\": \"/submit\", \"upstream\": "
               "\"q\", \"durable\": {}}" STATUS,
               "durable is only for POST routes", "(at routes[0].durable)");
    expect_err("{\"upstreams\": {\"q\": {\"url\": \"http://127.0.0.1:1\"}},\n\"routes\": [\n",
               SUBMIT("{}") STATUS, "needs the top-level \"spool\" block",
               "(at routes[0].durable)");
    expect_err(HEAD, SUBMIT("{}"), "durable route \"submit\" has no status route",
               "(at routes[0].durable)");
    expect_err(HEAD,
               "{\"method\": \"GET\", \"path\": \"/submissions/{id}\", \"submissions\": \"nope\"}",
               "no durable route named \"nope\"", "(at routes[0].submissions)");
    expect_err(HEAD,
               SUBMIT("{}") ",\n{\"method\": \"GET\", \"path\": \"/s/{a}/{b}\", "
                            "\"submissions\": \"submit\"}",
               "exactly one parameter", "(at routes[1].path)");
    expect_err(HEAD,
               SUBMIT("{}") ",\n{\"method\": \"POST\", \"path\": \"/s/{id}\", "
                            "\"submissions\": \"submit\"}",
               "a status route is a GET route", "(at routes[1].method)");
}

/* A durable route stores the body whole before it answers: it never streams, and saying it
 * should is an error rather than a setting quietly ignored. */
Test(durable_conf, never_streams)
{
    const struct tg_route *route = NULL;
    const struct tg_proxy_conf *pc;

    load_ok(SUBMIT("{}") STATUS);
    cr_assert(not(zero(ptr, (void *)tg_durable_of(conf->routes, "submit", &route))));
    pc = route->policy.handler_conf;
    cr_expect(not(pc->stream), "a durable route does not stream by default");
    load_ok("{\"name\": \"submit\", \"method\": \"POST\", \"path\": \"/submit\", "
            "\"upstream\": \"q\", \"durable\": {}, \"stream\": false}" STATUS);
    expect_err(HEAD,
               "{\"name\": \"submit\", \"method\": \"POST\", \"path\": \"/submit\", "
               "\"upstream\": \"q\", \"durable\": {}, \"stream\": true}" STATUS,
               "a durable route stores whole bodies: it cannot stream", "(at routes[0].stream)");
}

Test(durable_conf, the_error_names_line_and_column)
{
    char err[TG_CONF_ERR_MAX] = "";
    char want[512];

    cr_assert(eq(int, load(HEAD, SUBMIT("{\n\"mode\": \"sometimes\"}") STATUS, err, sizeof(err)),
                 TG_EINVAL));
    snprintf(want, sizeof(want), "%s:5:9: unknown mode", tmpconf_path());
    cr_expect(eq(int, strncmp(err, want, strlen(want)), 0), "%s", err);
}

Test(durable_conf, the_spool_block_defaults_and_resolves_paths_from_the_conf_file)
{
    const struct tg_spool_conf *sc;
    char dir[512];
    const char *slash;

    load_ok(SUBMIT("{}") STATUS);
    sc = conf->spool;
    slash = strrchr(tmpconf_path(), '/');
    snprintf(dir, sizeof(dir), "%.*s/spool/x.db", (int)(slash - tmpconf_path()), tmpconf_path());
    cr_expect(eq(str, sc->path, dir));
    cr_expect(not(zero(ptr, strstr(sc->key_file, "spool/x.db.key"))), "%s", sc->key_file);
    cr_expect(sc->sync_full);
    cr_expect(eq(sz, sc->max_bytes, (size_t)1 << 30));
    cr_expect(eq(u32, sc->key_ttl_s, 2592000));
    cr_expect(eq(u32, sc->response_ttl_s, 86400));
    cr_expect(eq(u32, sc->group_commit_us, 0));
}

Test(durable_conf, the_spool_block_is_checked)
{
    const char *routes = "{\"method\": \"GET\", \"path\": \"/h\", \"local\": \"health\"}";

    expect_err("{\"spool\": {\"path\": \"a.db\", \"synchronous\": \"off\"},\n\"routes\": [\n",
               routes, "unknown synchronous \"off\"", "(at spool.synchronous)");
    expect_err("{\"spool\": {\"path\": \"a.db\", \"key_ttl_s\": 600, \"response_ttl_s\": 700},\n"
               "\"routes\": [\n",
               routes, "response_ttl_s (700) is longer than key_ttl_s (600)",
               "(at spool.response_ttl_s)");
    expect_err("{\"spool\": {\"synchronous\": \"full\"},\n\"routes\": [\n", routes,
               "missing required key \"path\"", "(at spool)");
    expect_err("{\"spool\": {\"path\": \"a.db\", \"old_key_files\": [\"\"]},\n\"routes\": [\n",
               routes, "expected a non-empty string", "(at spool.old_key_files[0])");
}

/* ---- the rules the rest reads ---------------------------------------------------------------- */

Test(durable_conf, idempotency_keys_bare_or_quoted)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"abc", "abc"},
        {"\"abc\"", "abc"},
        {"  \"8e7f4145-714e-4b6b-a36c-2220116ee6bc\" ", "8e7f4145-714e-4b6b-a36c-2220116ee6bc"},
        {"a.b_c:d-e", "a.b_c:d-e"},
        {"", NULL},
        {"\"\"", NULL},
        {"a b", NULL},
        {"\"a\\\"b\"", NULL},
        {"\"abc", NULL},
        {"abc;x=1", NULL},
        {"p\xc3\xa4tient", NULL},
    };
    char out[TG_SPOOL_KEY_MAX + 1];
    char longest[TG_SPOOL_KEY_MAX + 2];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = tg_durable_parse_key(cases[i].in, strlen(cases[i].in), out);
        if (cases[i].out == NULL) {
            cr_expect(eq(int, rc, TG_EKEY), "accepted [%s]", cases[i].in);
        } else {
            cr_expect(eq(int, rc, TG_OK), "refused [%s]", cases[i].in);
            cr_expect(eq(str, out, (char *)cases[i].out));
        }
    }
    memset(longest, 'k', sizeof(longest));
    cr_expect(eq(int, tg_durable_parse_key(longest, TG_SPOOL_KEY_MAX, out), TG_OK), "255");
    cr_expect(eq(int, tg_durable_parse_key(longest, TG_SPOOL_KEY_MAX + 1, out), TG_EKEY), "256");
}

Test(durable_conf, outcomes_are_judged_by_status_and_whether_it_was_sent)
{
    static const int dup[] = {409};
    static const int on[] = {429, 503};
    struct tg_durable_conf dc = {
        .duplicate_status = (int *)dup, .n_duplicate_status = 1, .backend_dedup = true};

    dc.retry.on_status = (int *)on;
    dc.retry.n_on_status = 2;
    cr_expect(eq(int, tg_durable_classify(&dc, 201, true), TG_ATTEMPT_DELIVERED));
    cr_expect(eq(int, tg_durable_classify(&dc, 409, true), TG_ATTEMPT_DUPLICATE));
    cr_expect(eq(int, tg_durable_classify(&dc, 429, true), TG_ATTEMPT_RETRY));
    cr_expect(eq(int, tg_durable_classify(&dc, 500, true), TG_ATTEMPT_RETRY), "5xx always");
    cr_expect(eq(int, tg_durable_classify(&dc, 422, true), TG_ATTEMPT_REJECTED));
    cr_expect(eq(int, tg_durable_classify(&dc, 301, true), TG_ATTEMPT_REJECTED));
    cr_expect(eq(int, tg_durable_classify(&dc, 0, true), TG_ATTEMPT_RETRY), "dedup: resend");
    dc.backend_dedup = false;
    cr_expect(eq(int, tg_durable_classify(&dc, 0, true), TG_ATTEMPT_UNKNOWN), "sent, no answer");
    cr_expect(eq(int, tg_durable_classify(&dc, 0, false), TG_ATTEMPT_RETRY), "never sent");
    cr_expect(eq(int, tg_durable_classify(&dc, 503, true), TG_ATTEMPT_RETRY), "an answer");
}

Test(durable_conf, backoff_is_full_jitter_under_its_ceiling)
{
    struct tg_durable_retry r = {.base_ms = 100, .cap_ms = 1000};
    unsigned max[4] = {0};

    for (int i = 0; i < 2000; i++) {
        for (unsigned a = 1; a <= 4; a++) {
            unsigned ceiling = a == 1 ? 100 : a == 2 ? 200 : a == 3 ? 400 : 800;
            unsigned w = tg_durable_backoff_ms(&r, a);
            cr_assert(w >= 1 && w <= ceiling + 1, "attempt %u waited %u", a, w);
            max[a - 1] = w > max[a - 1] ? w : max[a - 1];
        }
        cr_assert(le(u32, tg_durable_backoff_ms(&r, 30), 1001), "the cap holds");
    }
    /* Spread over the whole window, not bunched at its top (which would retry in step). */
    cr_expect(gt(u32, max[3], 600));
    unsigned low = 0;
    for (int i = 0; i < 1000; i++) {
        low += tg_durable_backoff_ms(&r, 4) < 400;
    }
    cr_expect(gt(u32, low, 300), "about half should fall in the lower half: %u", low);
}

Test(durable_conf, the_demo_conf_turns_durable_on_for_submit)
{
    char file[1024], err[TG_CONF_ERR_MAX] = "";
    const struct tg_durable_conf *dc;
    const struct tg_route *r = NULL;

    snprintf(file, sizeof(file), "%s/conf/tracegate.json", TG_SOURCE_DIR);
    cr_assert(eq(int, tg_conf_load(file, tg_route_table_load, &conf, err, sizeof(err)), TG_OK),
              "%s", err);
    dc = tg_durable_of(conf->routes, "submit", &r);
    cr_assert(not(zero(ptr, (void *)dc)));
    cr_expect(eq(str, r->path, "/submit"));
    cr_expect(dc->require_key);
    cr_expect(eq(str, dc->order_by_header, "X-Patient-Id"));
    cr_expect(eq(str, (char *)dc->status_path, "/submissions/{id}"));
    cr_expect(not(zero(ptr, strstr(conf->spool->path, "/var/spool/tracegate.db"))), "%s",
              conf->spool->path);
    cr_expect(conf->spool->sync_full);
}
