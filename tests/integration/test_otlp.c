/* OTLP/HTTP span export against tg-stub's collector stand-in: the payload checked field by
 * field against the OTLP JSON mapping (hex ids, nanosecond times as decimal strings, kinds,
 * status, attributes of the HTTP semantic conventions), the resource from the OTEL_*
 * environment, sampling, retries, refusals, and a collector that hangs while requests go on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/otlp_attr.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define TRACE  "0af7651916cd43dd8448eb211c80319c"
#define PARENT "b7ad6b7169203331"

static struct fixture fx;

static void start_timeout(const char *collector_path, const char *ratio, const char *queue,
                          const char *timeout_ms)
{
    const char *specs[] = {"0:test", "0:collector"};
    const struct conf_var vars[] = {{"COLLECTOR_PATH", collector_path},
                                    {"RATIO", ratio},
                                    {"QUEUE", queue},
                                    {"TIMEOUT", timeout_ms}};

    fixture_stub_start(&fx, specs, 2, true);
    /* Criterion runs each test in a process of its own, on one thread: setenv is safe. */
    setenv("OTEL_SERVICE_NAME", "epro-gateway", 1);                                    /* NOLINT */
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=e%20pro", 1); /* NOLINT */
    fixture_gateway_start(&fx, "otlp.json", vars, 4);
    unsetenv("OTEL_SERVICE_NAME");        /* NOLINT(concurrency-mt-unsafe) */
    unsetenv("OTEL_RESOURCE_ATTRIBUTES"); /* NOLINT(concurrency-mt-unsafe) */
}

static void start(const char *collector_path, const char *ratio, const char *queue)
{
    start_timeout(collector_path, ratio, queue, "2000");
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(otlp, .fini = teardown, .timeout = 90);

static long get(const char *target, const char *const *headers, struct http_resp *keep)
{
    struct http_resp r;
    long status;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, headers, NULL, 0, 0, &r), 0);
    status = r.status;
    if (keep != NULL) {
        *keep = r;
    } else {
        http_resp_free(&r);
    }
    return status;
}

/* Every "otlp" record of the collector (its requests), in order. */
static json_t *posts(void)
{
    json_t *all = stub_records(fx.record), *out = json_array(), *rec;
    size_t i;

    json_array_foreach(all, i, rec)
    {
        if (strcmp(json_string_value(json_object_get(rec, "event")), "otlp") == 0) {
            json_array_append(out, rec);
        }
    }
    json_decref(all);
    return out;
}

/* Every span of every post accepted so far (parsed bodies); waits until at least want arrived
 * or 10 s passed. */
static json_t *spans(size_t want)
{
    json_t *out = NULL;
    uint64_t end = now_us() + 10000000u;

    do {
        json_t *p = posts(), *rec;
        size_t i;
        json_decref(out);
        out = json_array();
        json_array_foreach(p, i, rec)
        {
            json_t *body = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
            json_t *list = json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(body, "resourceSpans"), 0),
                                    "scopeSpans"),
                    0),
                "spans");
            json_array_extend(out, list);
            json_decref(body);
        }
        json_decref(p);
        if (json_array_size(out) >= want) {
            break;
        }
        usleep(50000);
    } while (now_us() < end);
    return out;
}

static json_t *span_of_kind(json_t *list, int kind)
{
    size_t i;
    json_t *s;

    json_array_foreach(list, i, s)
    {
        if (json_integer_value(json_object_get(s, "kind")) == kind) {
            return s;
        }
    }
    return NULL;
}

static const char *attr_s(json_t *owner, const char *key)
{
    return json_string_value(json_object_get(otlp_attr(owner, key), "stringValue"));
}

/* Integer attributes are decimal strings ("intValue": "200"), as int64 are in the mapping. */
static const char *attr_i(json_t *owner, const char *key)
{
    return json_string_value(json_object_get(otlp_attr(owner, key), "intValue"));
}

/* How many client spans of list say http.request.resend_count 1. */
static int resent_spans(json_t *list)
{
    int n = 0;

    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *sp = json_array_get(list, i);
        const char *v = attr_i(sp, "http.request.resend_count");
        n += json_integer_value(json_object_get(sp, "kind")) == 3 && v != NULL &&
             strcmp(v, "1") == 0;
    }
    return n;
}

static int is_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* A nanosecond Unix time as a string of digits, within a minute of now. */
static unsigned long long nanos(json_t *s, const char *key)
{
    const char *v = json_string_value(json_object_get(s, key));
    char *end = NULL;
    unsigned long long ns;
    time_t now = time(NULL);

    cr_assert_not_null(v, "%s is not a string", key);
    ns = strtoull(v, &end, 10);
    cr_assert(*v != '\0' && *end == '\0', "%s: %s", key, v);
    cr_expect((time_t)(ns / 1000000000u) > now - 60 && (time_t)(ns / 1000000000u) <= now + 1,
              "%s: %s", key, v);
    return ns;
}

Test(otlp, one_server_and_one_client_span_per_request, .init = NULL)
{
    const char *h[] = {"traceparent: 00-" TRACE "-" PARENT "-01", "User-Agent: epro-app/2.1", NULL};
    struct http_resp r;
    char tp[128];
    json_t *list, *server, *client, *body, *res, *scope;
    json_t *recs;
    const char *stub_tp = NULL;
    size_t i;
    json_t *rec;

    start("", "1", "2048");
    cr_assert_eq(get("/api/patients/p1", h, &r), 200);
    http_header(&r, "traceparent", tp, sizeof(tp));
    http_resp_free(&r);
    list = spans(2);
    cr_assert_eq(json_array_size(list), 2, "%s", json_dumps(list, 0));
    server = span_of_kind(list, 2);
    client = span_of_kind(list, 3);
    cr_assert_not_null(server);
    cr_assert_not_null(client);
    /* Ids: lower-case hex, the W3C ids the gateway made and sent. */
    cr_expect_str_eq(json_string_value(json_object_get(server, "traceId")), TRACE);
    cr_expect_str_eq(json_string_value(json_object_get(client, "traceId")), TRACE);
    cr_expect_str_eq(json_string_value(json_object_get(server, "parentSpanId")), PARENT);
    cr_expect(is_hex(json_string_value(json_object_get(server, "spanId")), 16));
    cr_expect(strstr(tp, json_string_value(json_object_get(server, "spanId"))) != NULL,
              "the answer's traceparent %s names the server span", tp);
    cr_expect_str_eq(json_string_value(json_object_get(client, "parentSpanId")),
                     json_string_value(json_object_get(server, "spanId")));
    recs = stub_records(fx.record);
    json_array_foreach(recs, i, rec)
    {
        if (strcmp(json_string_value(json_object_get(rec, "event")), "request") == 0) {
            stub_tp = record_header(rec, "traceparent");
        }
    }
    cr_assert_not_null(stub_tp);
    cr_expect(strstr(stub_tp, json_string_value(json_object_get(client, "spanId"))) != NULL,
              "the upstream got %s", stub_tp);
    json_decref(recs);
    /* Names, kinds, times. */
    cr_expect_str_eq(json_string_value(json_object_get(server, "name")), "GET api");
    cr_expect_str_eq(json_string_value(json_object_get(client, "name")), "GET");
    cr_expect_leq(nanos(server, "startTimeUnixNano"), nanos(client, "startTimeUnixNano"));
    cr_expect_leq(nanos(client, "endTimeUnixNano"), nanos(server, "endTimeUnixNano"));
    cr_expect_leq(nanos(server, "startTimeUnixNano"), nanos(server, "endTimeUnixNano"));
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(server, "status"), "code")), 0);
    /* Attributes (OpenTelemetry HTTP semantic conventions); no path, no query. */
    cr_expect_str_eq(attr_s(server, "http.request.method"), "GET");
    cr_expect_str_eq(attr_s(server, "http.route"), "/api/*");
    cr_expect_str_eq(attr_i(server, "http.response.status_code"), "200");
    cr_expect_str_eq(attr_s(server, "url.scheme"), "http");
    cr_expect_str_eq(attr_s(server, "client.address"), "127.0.0.1");
    cr_expect_str_eq(attr_s(server, "user_agent.original"), "epro-app/2.1");
    cr_expect_str_eq(attr_s(server, "network.protocol.version"), "1.1");
    cr_expect_null(otlp_attr(server, "url.path"));
    cr_expect_null(otlp_attr(server, "url.query"));
    cr_expect_str_eq(attr_s(client, "server.address"), "127.0.0.1");
    cr_expect_eq(strtol(attr_i(client, "server.port"), NULL, 10), fx.stub.ports[0]);
    cr_expect_str_eq(attr_i(client, "http.response.status_code"), "200");
    cr_expect_str_eq(attr_i(client, "http.request.resend_count"), "0");
    cr_expect_str_eq(attr_s(client, "tracegate.upstream"), "t");
    json_decref(list);
    /* The request: POST {endpoint}/v1/traces, application/json; the resource from OTEL_*. */
    list = posts();
    rec = json_array_get(list, 0);
    cr_expect_str_eq(json_string_value(json_object_get(rec, "method")), "POST");
    cr_expect_str_eq(json_string_value(json_object_get(rec, "target")), "/v1/traces");
    cr_expect_str_eq(json_string_value(json_object_get(rec, "content_type")), "application/json");
    body = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
    res = json_object_get(json_array_get(json_object_get(body, "resourceSpans"), 0), "resource");
    cr_expect_str_eq(attr_s(res, "service.name"), "epro-gateway");
    cr_expect_str_eq(attr_s(res, "deployment.environment"), "test");
    cr_expect_str_eq(attr_s(res, "team"), "e pro");
    cr_expect_str_eq(attr_s(res, "service.version"), TG_VERSION_TEXT);
    scope = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(body, "resourceSpans"), 0),
                                       "scopeSpans"),
                       0),
        "scope");
    cr_expect_str_eq(json_string_value(json_object_get(scope, "name")), "tracegate");
    json_decref(body);
    json_decref(list);
}

Test(otlp, failures_are_errors_on_both_sides)
{
    json_t *list, *server, *client;

    start("", "1", "2048");
    cr_assert_eq(get("/api/x?status=503", NULL, NULL), 503);
    /* A GET answered 503 is retried once by default: one server span, two client spans. */
    list = spans(3);
    server = span_of_kind(list, 2);
    client = span_of_kind(list, 3);
    cr_assert(server != NULL && client != NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(server, "status"), "code")), 2);
    cr_expect_str_eq(attr_s(server, "error.type"), "503");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(client, "status"), "code")), 2);
    /* The retry's client span says it was sent again. */
    cr_expect_eq(resent_spans(list), 1, "%s", json_dumps(list, 0));
    /* A gateway-started trace: a root span with a fresh W3C id. */
    cr_expect_null(json_object_get(server, "parentSpanId"));
    cr_expect(is_hex(json_string_value(json_object_get(server, "traceId")), 32));
    json_decref(list);
    /* A 4xx is the client's: unset on the server span, an error on the client span. */
    cr_assert_eq(get("/api/x?status=404", NULL, NULL), 404);
    list = spans(5);
    server = json_array_get(list, 4);
    server =
        json_integer_value(json_object_get(server, "kind")) == 2 ? server : json_array_get(list, 3);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(server, "status"), "code")), 0,
                 "%s", json_dumps(server, 0));
    json_decref(list);
}

Test(otlp, unsampled_traces_and_ratio_zero_export_nothing)
{
    const char *h[] = {"traceparent: 00-" TRACE "-" PARENT "-00", NULL};
    const char *sampled[] = {"traceparent: 00-" TRACE "-" PARENT "-01", NULL};
    json_t *list;

    start("", "0", "2048");
    cr_assert_eq(get("/api/a", h, NULL), 200);       /* the client did not sample */
    cr_assert_eq(get("/api/b", NULL, NULL), 200);    /* started here, ratio 0 */
    cr_assert_eq(get("/api/c", sampled, NULL), 200); /* the client's decision is honoured */
    list = spans(2);
    usleep(500000); /* more than a batch timeout: nothing else comes */
    json_decref(list);
    list = spans(2);
    cr_expect_eq(json_array_size(list), 2, "%s", json_dumps(list, 0));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "traceId")), TRACE);
    json_decref(list);
}

Test(otlp, busy_collector_is_retried_with_the_same_spans)
{
    char body[8192];
    struct http_resp r;
    json_t *p, *list;

    start("/fail-2", "1", "2048");
    cr_assert_eq(get("/api/a", NULL, NULL), 200);
    list = spans(6); /* two refused posts and the third, each with the same 2 spans */
    json_decref(list);
    p = posts();
    cr_expect_eq(json_array_size(p), 3, "%s", json_dumps(p, 0));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(p, 0), "body")),
                     json_string_value(json_object_get(json_array_get(p, 2), "body")));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(p, 2), "target")),
                     "/fail-2/v1/traces");
    json_decref(p);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    snprintf(body, sizeof(body), "%s", r.body);
    http_resp_free(&r);
    cr_expect_neq(strstr(body, "\ntracegate_otlp_export_retries_total 2\n"), NULL, "%s", body);
    cr_expect_neq(strstr(body, "\ntracegate_otlp_spans_exported_total 2\n"), NULL, "%s", body);
}

Test(otlp, refused_batches_are_dropped_and_counted)
{
    struct http_resp r;
    const char *warn[] = {"\"event\":\"otlp.rejected\"", NULL};

    start("/reject", "1", "2048");
    cr_assert_eq(get("/api/a", NULL, NULL), 200);
    cr_assert_eq(proc_log_wait(&fx.gw, warn, 1, 10000), 1, "log %s", fx.gw.log_path);
    usleep(1500000); /* longer than the first backoff */
    json_t *p = posts();
    cr_expect_eq(json_array_size(p), 1, "a 400 is not retried: %s", json_dumps(p, 0));
    json_decref(p);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    cr_expect_neq(strstr(r.body, "tracegate_otlp_spans_dropped_total{reason=\"rejected\"} 2\n"),
                  NULL, "%s", r.body);
    cr_expect_neq(strstr(r.body, "\ntracegate_otlp_export_retries_total 0\n"), NULL);
    http_resp_free(&r);
}

/* The collector takes the request and never answers: requests keep their pace, and once the
 * small queue is full, spans are dropped and counted. */
Test(otlp, a_hanging_collector_never_slows_requests)
{
    struct http_resp r;
    uint64_t t0 = now_us();
    const char *line;

    start("/hang", "1", "32");
    for (int i = 0; i < 60; i++) {
        cr_assert_eq(get("/api/a", NULL, NULL), 200);
    }
    /* 60 requests on loopback: far below a second even on a loaded machine, while the export
     * waits its 2 s timeout. */
    cr_expect_lt(now_us() - t0, 3000000u, "took %llu us", (unsigned long long)(now_us() - t0));
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    line = strstr(r.body, "tracegate_otlp_spans_dropped_total{reason=\"queue_full\"} ");
    cr_assert_not_null(line, "%s", r.body);
    cr_expect_gt(strtol(line + strlen("tracegate_otlp_spans_dropped_total{reason=\"queue_full\"} "),
                        NULL, 10),
                 0, "%s", r.body);
    http_resp_free(&r);
}

/* A collector that takes the spans and never answers must not hold the exit: the post in
 * progress gives way to the stop, the rest gets one short try, then is dropped. */
Test(otlp, a_hanging_collector_does_not_hold_the_exit)
{
    const char *stopped[] = {"\"event\":\"stopped\"", NULL};
    uint64_t t0;
    json_t *p;

    start_timeout("/hang", "1", "2048", "30000");
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(get("/api/a", NULL, NULL), 200);
    }
    usleep(500000); /* the batch timeout passed: a post hangs now */
    p = posts();
    cr_assert_gt(json_array_size(p), 0, "no post reached the collector");
    json_decref(p);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(get("/api/b", NULL, NULL), 200); /* queued behind the hanging post */
    }
    t0 = now_us();
    proc_signal(&fx.gw, SIGTERM);
    cr_expect_eq(proc_log_wait(&fx.gw, stopped, 1, 20000), 1, "log %s", fx.gw.log_path);
    cr_expect_lt(now_us() - t0, 8000000u, "the exit took %llu us, not the post's 30 s",
                 (unsigned long long)(now_us() - t0));
    /* The fixture's stop reaps it and expects exit 0. */
}
