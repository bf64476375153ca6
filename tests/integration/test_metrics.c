/* /metrics as Prometheus reads it: promtool accepts it, the histograms count by route name,
 * method and status class, and by upstream and outcome; build, conf and process families. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "metrics.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 60);

static void get(const char *method, const char *target, long want)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], method, target, NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, want, "%s %s: %ld %s", method, target, r.status, r.body);
    http_resp_free(&r);
}

static char *scrape(void)
{
    struct http_resp r;
    char *text;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    text = strdup(r.body);
    http_resp_free(&r);
    return text;
}

/* The value of the sample line "name value" in text, or -1. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
    }
    return -1;
}

/* Runs cmd with text on its stdin; returns its exit status, out gets what it printed. */
static int pipe_through(const char *cmd, const char *text, char *out, size_t cap)
{
    char path[128], full[512];
    FILE *f, *p;
    size_t got;
    int status;

    temp_path(path, sizeof(path), "metrics");
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(full, sizeof(full), "%s < %s 2>&1", cmd, path);
    p = popen(full, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    status = pclose(p);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(metrics, promtool_accepts_the_exposition)
{
    char out[4096];
    char *text;

    if (system("command -v promtool >/dev/null 2>&1") != 0) { /* NOLINT(cert-env33-c) */
        cr_assert_fail("promtool not found: `make test` installs the prometheus package for it");
    }
    get("GET", "/api/a", 200);
    get("POST", "/api/b?status=503", 503);
    get("GET", "/api/c?reset=1", 502);
    get("GET", "/nowhere", 404);
    text = scrape();
    cr_expect_eq(pipe_through("promtool check metrics", text, out, sizeof(out)), 0, "%s\n%s", out,
                 text);
    cr_expect_eq(out[0], '\0', "promtool said: %s", out);
    free(text);
}

Test(metrics, request_histogram_by_route_method_and_class)
{
    char *text;

    for (int i = 0; i < 3; i++) {
        get("GET", "/api/a", 200);
    }
    get("POST", "/api/b?status=503", 503);
    get("GET", "/nowhere", 404);
    get("GET", "/slow?delay_ms=2000", 504);
    text = scrape();
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_count{route=\"api\","
                              "method=\"GET\",class=\"2xx\"}"),
                 3, "%s", text);
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_bucket{route=\"api\","
                              "method=\"GET\",class=\"2xx\",le=\"+Inf\"}"),
                 3);
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_count{route=\"api\","
                              "method=\"POST\",class=\"5xx\"}"),
                 1);
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_count{route=\"\","
                              "method=\"GET\",class=\"4xx\"}"),
                 1);
    /* The 200 ms budget: above 0.1 s, not in the 0.1 bucket, in the 0.25 one unless the machine
     * is very slow, and surely below 10 s. */
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_bucket{route=\"slow\","
                              "method=\"GET\",class=\"5xx\",le=\"0.1\"}"),
                 0, "%s", text);
    cr_expect_eq(sample(text, "tracegate_request_duration_seconds_bucket{route=\"slow\","
                              "method=\"GET\",class=\"5xx\",le=\"10\"}"),
                 1);
    cr_expect_geq(sample(text, "tracegate_request_duration_seconds_sum{route=\"slow\","
                               "method=\"GET\",class=\"5xx\"}"),
                  0.2);
    /* The path never becomes a label. */
    cr_expect_null(strstr(text, "/api/a"), "%s", text);
    free(text);
}

Test(metrics, upstream_histogram_by_upstream_and_outcome)
{
    char *text;

    get("GET", "/api/a", 200);
    get("GET", "/api/a?status=404", 404);
    get("GET", "/api/c?reset=1", 502);
    get("GET", "/slow?delay_ms=2000", 504);
    text = scrape();
    cr_expect_eq(sample(text, "tracegate_upstream_request_duration_seconds_count{upstream=\"t\","
                              "outcome=\"2xx\"}"),
                 1, "%s", text);
    cr_expect_eq(sample(text, "tracegate_upstream_request_duration_seconds_count{upstream=\"t\","
                              "outcome=\"4xx\"}"),
                 1);
    /* The reset GET is retried once by default: each attempt is an observation. */
    cr_expect_eq(sample(text, "tracegate_upstream_request_duration_seconds_count{upstream=\"t\","
                              "outcome=\"error\"}"),
                 2);
    cr_expect_eq(sample(text, "tracegate_upstream_request_duration_seconds_count{upstream=\"t\","
                              "outcome=\"timeout\"}"),
                 1);
    cr_expect_eq(sample(text, "tracegate_upstream_requests_in_flight{upstream=\"t\"}"), 0);
    free(text);
}

Test(metrics, build_conf_and_process_families)
{
    char cmd[256], out[256], *text = scrape();
    char want[300];

    cr_expect_neq(strstr(text, "tracegate_build_info{version=\""), NULL, "%s", text);
    cr_expect_neq(strstr(text, ",libmicrohttpd=\""), NULL);
    cr_expect_neq(strstr(text, ",libcurl=\""), NULL);
    cr_expect_gt(sample(text, "process_open_fds"), 5);
    cr_expect_gt(sample(text, "process_resident_memory_bytes"), 1e6);
    cr_expect_gt(sample(text, "process_start_time_seconds"), 1.6e9);
    cr_expect_geq(sample(text, "process_cpu_seconds_total"), 0);
    /* The checksum is the one sha256sum prints for the conf file. */
    snprintf(cmd, sizeof(cmd), "sha256sum %s", fx.conf_path);
    cr_assert_eq(pipe_through(cmd, "", out, sizeof(out)), 0);
    out[64] = '\0';
    snprintf(want, sizeof(want), "checksum=\"%s\"} 1", out);
    cr_expect_neq(strstr(text, want), NULL, "want %s in %s", want, text);
    cr_expect_gt(sample(text, "tracegate_conf_loaded_timestamp_seconds"), 1.6e9);
    free(text);
}
