/* request.done lines that join with the rest of a hospital's logs: the W3C trace id beside a
 * plain one, the client's span, user agent, protocol, host, upstream address and attempts; 5xx
 * as warn; probes left out; paths that name patients logged as their pattern; a bad conf said
 * once, as a JSON line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define TRACE  "0af7651916cd43dd8448eb211c80319c"
#define PARENT "b7ad6b7169203331"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "access_log.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(access_log, .init = setup, .fini = teardown, .timeout = 60);

static void get(const char *target, const char *const *headers, long want)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", target, headers, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, want, "%s: %ld", target, r.status);
    http_resp_free(&r);
}

/* The request.done line holding needle, parsed; waits for it. NULL when none came. */
static json_t *done_line(const char *needle)
{
    const char *n[] = {"\"event\":\"request.done\"", needle, NULL};
    char *log, *line, *save = NULL;
    json_t *out = NULL;

    if (proc_log_wait(&fx.gw, n, 1, 5000) < 1) {
        return NULL;
    }
    log = proc_log(&fx.gw);
    for (line = strtok_r(log, "\n", &save); line != NULL && out == NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "\"event\":\"request.done\"") != NULL && strstr(line, needle) != NULL) {
            out = json_loads(line, 0, NULL);
        }
    }
    free(log);
    return out;
}

static const char *field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

Test(access_log, a_plain_id_line_carries_the_w3c_id_upstreams_log)
{
    const char *h[] = {"X-Trace-Id: demo-trace-1", "User-Agent: epro-app/2.1 (Android)", NULL};
    json_t *l, *recs, *rec;
    const char *tp = NULL;
    char upstream[64];
    size_t i;

    get("/api/q", h, 200);
    l = done_line("\"trace_id\":\"demo-trace-1\"");
    cr_assert_not_null(l, "log %s", fx.gw.log_path);
    recs = stub_records(fx.record);
    json_array_foreach(recs, i, rec)
    {
        if (strcmp(field(rec, "event"), "request") == 0) {
            tp = record_header(rec, "traceparent");
        }
    }
    cr_assert_not_null(tp);
    cr_expect_eq(strlen(field(l, "w3c_trace_id")), 32);
    cr_expect_eq(strncmp(tp + 3, field(l, "w3c_trace_id"), 32), 0, "upstream got %s", tp);
    cr_expect_null(json_object_get(l, "parent_span_id"), "the client sent no span");
    cr_expect_str_eq(field(l, "user_agent"), "epro-app/2.1 (Android)");
    cr_expect_str_eq(field(l, "protocol"), "HTTP/1.1");
    cr_expect_neq(strstr(field(l, "host"), "127.0.0.1:"), NULL, "%s", field(l, "host"));
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", fx.stub.ports[0]);
    cr_expect_str_eq(field(l, "upstream_addr"), upstream);
    cr_expect_eq(json_integer_value(json_object_get(l, "attempts")), 1);
    cr_expect_str_eq(field(l, "level"), "info");
    json_decref(recs);
    json_decref(l);
}

Test(access_log, a_traceparent_line_names_the_clients_span)
{
    const char *h[] = {"traceparent: 00-" TRACE "-" PARENT "-01", NULL};
    json_t *l;

    get("/api/q", h, 200);
    l = done_line("\"trace_id\":\"" TRACE "\"");
    cr_assert_not_null(l, "log %s", fx.gw.log_path);
    cr_expect_str_eq(field(l, "parent_span_id"), PARENT);
    cr_expect_null(json_object_get(l, "w3c_trace_id"), "same as trace_id: not repeated");
    json_decref(l);
}

Test(access_log, a_5xx_line_is_warn)
{
    const char *h[] = {"X-Trace-Id: five-oh-three", NULL};
    json_t *l;

    get("/api/q?status=503", h, 503);
    l = done_line("\"trace_id\":\"five-oh-three\"");
    cr_assert_not_null(l, "log %s", fx.gw.log_path);
    cr_expect_str_eq(field(l, "level"), "warn");
    json_decref(l);
}

Test(access_log, probes_can_stay_out_and_patient_paths_become_patterns)
{
    const char *h[] = {"X-Trace-Id: probe-1", NULL};
    const char *h2[] = {"X-Trace-Id: patient-1", NULL};
    const char *probe[] = {"\"event\":\"request.done\"", "probe-1", NULL};
    json_t *l;
    char *log;

    get("/healthz", h, 200);
    get("/patients/pat-4711", h2, 200);
    l = done_line("\"trace_id\":\"patient-1\"");
    cr_assert_not_null(l, "log %s", fx.gw.log_path);
    cr_expect_str_eq(field(l, "path"), "/patients/{id}");
    json_decref(l);
    cr_expect_eq(proc_log_count(&fx.gw, probe), 0, "log %s", fx.gw.log_path);
    log = proc_log(&fx.gw);
    cr_expect_null(strstr(log, "pat-4711"), "the id reached the log: %s", fx.gw.log_path);
    free(log);
}

Test(access_log, a_bad_conf_is_said_once_as_json)
{
    char path[128];
    struct proc gw;
    char *log;
    const char *argv[] = {TG_BINARY, "-c", path, NULL};
    size_t lines = 0;

    conf_template_write(path, sizeof(path), "cli_unknown_upstream.json", NULL, 0);
    cr_assert_neq(proc_spawn(&gw, argv, 1), 0);
    log = proc_log(&gw);
    cr_assert_not_null(log);
    for (const char *p = log; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    cr_expect_eq(lines, 1, "one line: %s", log);
    cr_expect_eq(strncmp(log, "{\"ts\":", 6), 0, "%s", log);
    cr_expect_neq(strstr(log, "\"event\":\"conf.error\""), NULL, "%s", log);
    cr_expect_neq(strstr(log, "unknown upstream"), NULL, "%s", log);
    free(log);
    unlink(path);
}
