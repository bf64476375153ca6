/* The admin listener: /metrics, /healthz, /readyz and /info on a port of their own, readiness
 * failing while the workers drain, off when the conf says so; local routes on the public port
 * behind an allow list. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "admin.json", NULL, 0);
    cr_assert_gt(fx.gw.admin_port, 0, "no admin port on the listening line: %s", fx.gw.log_path);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(admin, .init = setup, .fini = teardown, .timeout = 60);

static long admin_get(const char *target, char *body, size_t cap)
{
    struct http_resp r;
    long status;

    cr_assert_eq(http_do(fx.gw.admin_port, "GET", target, NULL, NULL, 0, 0, &r), 0);
    status = r.status;
    if (body != NULL) {
        snprintf(body, cap, "%s", r.body);
    }
    http_resp_free(&r);
    return status;
}

static long long sample(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtoll(p + n + 1, NULL, 10);
        }
    }
    return -1;
}

Test(admin, serves_probes_metrics_and_info)
{
    static char body[65536];
    struct http_resp r;
    json_t *info;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/api/x", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
    cr_expect_eq(admin_get("/healthz", body, sizeof(body)), 200);
    cr_expect_str_eq(body, "{\"status\":\"ok\"}");
    cr_expect_eq(admin_get("/readyz", body, sizeof(body)), 200);
    cr_expect_str_eq(body, "{\"status\":\"ready\"}");
    cr_expect_eq(admin_get("/metrics", body, sizeof(body)), 200);
    /* The public request is counted; the admin's own requests are not. */
    cr_expect_eq(sample(body, "tracegate_requests_total"), 1, "%s", body);
    cr_expect_eq(admin_get("/info", body, sizeof(body)), 200);
    info = json_loads(body, 0, NULL);
    cr_assert_not_null(info, "%s", body);
    cr_expect_str_eq(json_string_value(json_object_get(info, "version")), TG_VERSION_TEXT);
    cr_expect_not_null(json_string_value(json_object_get(info, "commit")));
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(info, "conf"), "file")),
                     fx.conf_path);
    cr_expect_eq(
        strlen(json_string_value(json_object_get(json_object_get(info, "conf"), "checksum"))), 64);
    json_decref(info);
    cr_expect_eq(admin_get("/", NULL, 0), 404);
    cr_expect_eq(admin_get("/api/x", NULL, 0), 404, "public routes stay off the admin port");
}

Test(admin, only_get_and_head)
{
    struct http_resp r;
    char allow[64];

    cr_assert_eq(http_do(fx.gw.admin_port, "POST", "/metrics", NULL, "x", 1, 0, &r), 0);
    cr_expect_eq(r.status, 405);
    cr_expect_str_eq(http_header(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
    http_resp_free(&r);
}

Test(admin, info_follows_a_reload)
{
    static char before[8192], after[8192];
    const char *reloaded[] = {"\"event\":\"conf.reloaded\"", NULL};
    FILE *f;

    cr_assert_eq(admin_get("/info", before, sizeof(before)), 200);
    f = fopen(fx.conf_path, "a");
    cr_assert_not_null(f);
    fputs("\n", f); /* same conf, other bytes: another checksum */
    fclose(f);
    proc_signal(&fx.gw, SIGHUP);
    cr_assert_eq(proc_log_wait(&fx.gw, reloaded, 1, 10000), 1, "log %s", fx.gw.log_path);
    usleep(100000);
    cr_assert_eq(admin_get("/info", after, sizeof(after)), 200);
    cr_expect_str_neq(before, after);
}

/* Kubernetes takes the pod out of the Service on readiness: it must fail at once when the drain
 * begins, while the requests in flight finish and liveness holds. */
Test(admin, readiness_fails_while_draining)
{
    struct http_resp r;
    char body[256];
    pid_t pid = fork();

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int rc = http_do(fx.gw.ports[0], "GET", "/api/slow?delay_ms=1500", NULL, NULL, 0, 0, &r);
        _exit(rc == 0 && r.status == 200 ? 0 : 1);
    }
    usleep(300000);
    proc_signal(&fx.gw, SIGTERM);
    usleep(200000);
    cr_expect_eq(admin_get("/readyz", body, sizeof(body)), 503, "%s", body);
    cr_expect_str_eq(body, "{\"status\":\"draining\"}");
    cr_expect_eq(admin_get("/healthz", NULL, 0), 200);
    cr_expect_eq(admin_get("/metrics", body, sizeof(body)), 200);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the request in flight failed");
    (void)r; /* the fixture's stop waits for the drain to end and expects exit 0 */
}

Test(admin, allow_list_guards_local_routes_on_the_public_port)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/public-metrics", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 403, "%s", r.body);
    cr_expect_neq(strstr(r.body, "\"error\":\"forbidden\""), NULL, "%s", r.body);
    http_resp_free(&r);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/loopback-metrics", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
}

Test(admin, off_when_the_conf_says_so)
{
    char path[128];
    struct proc gw;

    conf_template_write(path, sizeof(path), "admin_off.json", NULL, 0);
    cr_assert_eq(gateway_start(&gw, path, NULL), 0, "log %s", gw.log_path);
    cr_expect_eq(gw.admin_port, 0);
    cr_expect_eq(proc_log_count(&gw, (const char *const[]){"\"admin\":", NULL}), 0);
    cr_expect_eq(proc_stop(&gw, SIGTERM, 10000), 0, "log %s", gw.log_path);
    unlink(path);
}
