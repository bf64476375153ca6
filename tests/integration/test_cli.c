/* The command line: --version, --help, --check with good and bad confs, the listening line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"

/* Runs the gateway with args to completion; returns its exit code, out gets stdout+stderr. */
static int run(const char *const *args, char *out, size_t cap)
{
    char cmd[2048];
    size_t n = (size_t)snprintf(cmd, sizeof(cmd), "%s", TG_BINARY);
    FILE *p;
    size_t got;
    int status;

    for (size_t i = 0; args[i] != NULL; i++) {
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " '%s'", args[i]);
    }
    snprintf(cmd + n, sizeof(cmd) - n, " 2>&1");
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(cli, version_and_help)
{
    char out[4096];
    const char *v[] = {"--version", NULL};
    const char *h[] = {"--help", NULL};

    cr_expect_eq(run(v, out, sizeof(out)), 0);
    cr_expect(strncmp(out, "tracegate ", 10) == 0, "%s", out);
    cr_expect_eq(run(h, out, sizeof(out)), 0);
    cr_expect(strstr(out, "--check") != NULL, "%s", out);
}

Test(cli, no_conf_is_a_usage_error)
{
    char out[4096];
    const char *none[] = {NULL};

    cr_expect_eq(run(none, out, sizeof(out)), 2);
    cr_expect(strstr(out, "usage:") != NULL, "%s", out);
}

Test(cli, check_accepts_every_shipped_conf)
{
    const char *files[] = {"conf/tracegate.json", "conf/docker.json", "conf/examples/minimal.json",
                           "conf/examples/full.json"};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024];
        char out[4096];
        snprintf(path, sizeof(path), "%s/%s", TG_SOURCE_DIR, files[i]);
        const char *args[] = {"--check", "-c", path, NULL};
        cr_expect_eq(run(args, out, sizeof(out)), 0, "%s: %s", files[i], out);
    }
}

Test(cli, check_names_file_line_column_and_path)
{
    char path[128];
    char out[4096];
    char want[256];

    conf_template_write(path, sizeof(path), "cli_unknown_upstream.json", NULL, 0);
    const char *args[] = {"--check", "-c", path, NULL};
    cr_expect_eq(run(args, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "%s:4:49: ", path);
    cr_expect(strncmp(out, want, strlen(want)) == 0, "got: %s", out);
    cr_expect(strstr(out, "(at routes[0].upstream)") != NULL, "got: %s", out);
    unlink(path);
}

Test(cli, check_reports_syntax_errors_with_position)
{
    char path[128];
    char out[4096];
    char want[256];

    conf_template_write(path, sizeof(path), "cli_syntax_error.json", NULL, 0);
    const char *args[] = {"--check", "-c", path, NULL};
    cr_expect_eq(run(args, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "%s:3:", path);
    cr_expect(strncmp(out, want, strlen(want)) == 0, "got: %s", out);
    unlink(path);
}

Test(cli, missing_conf_file_fails_clearly)
{
    char out[4096];
    const char *args[] = {"--check", "-c", "/nonexistent/tracegate.json", NULL};

    cr_expect_eq(run(args, out, sizeof(out)), 1);
    cr_expect(strstr(out, "/nonexistent/tracegate.json") != NULL, "%s", out);
}

Test(cli, port_zero_reports_the_chosen_port)
{
    char path[128];
    struct proc gw;
    struct http_resp r;
    const char *w[] = {"--workers", "3", NULL};

    conf_template_write(path, sizeof(path), "cli_health.json", NULL, 0);
    cr_assert_eq(gateway_start(&gw, path, w), 0, "log %s", gw.log_path);
    cr_expect_gt(gw.ports[0], 1024);
    cr_expect_eq(proc_log_count(&gw, (const char *const[]){"\"workers\":3", NULL}), 1);
    /* Every worker serves the port the first one got: many connections, all answered. */
    for (int i = 0; i < 30; i++) {
        cr_assert_eq(http_do(gw.ports[0], "GET", "/healthz", NULL, NULL, 0, 0, &r), 0);
        cr_expect_eq(r.status, 200);
        http_resp_free(&r);
    }
    cr_expect_eq(proc_stop(&gw, SIGTERM, 10000), 0, "log %s", gw.log_path);
    unlink(path);
}

/* Started with a low soft limit on open files, the gateway raises it to the hard limit: a
 * default shell limit of 1024 would otherwise cap it near 500 proxied connections. */
Test(cli, raises_the_open_file_limit)
{
    struct rlimit old;
    struct rlimit low;
    char path[128];
    char limits[64];
    struct proc gw;
    FILE *f;
    char line[256];
    unsigned long long soft = 0;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    if (old.rlim_max <= 1024) {
        cr_skip_test("hard limit too low to see a raise");
    }
    low = old;
    low.rlim_cur = 1024;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    conf_template_write(path, sizeof(path), "cli_health.json", NULL, 0);
    cr_assert_eq(gateway_start(&gw, path, NULL), 0, "log %s", gw.log_path);
    setrlimit(RLIMIT_NOFILE, &old);
    snprintf(limits, sizeof(limits), "/proc/%d/limits", (int)gw.pid);
    f = fopen(limits, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Max open files", 14) == 0) {
            soft = strtoull(line + 14, NULL, 10);
        }
    }
    fclose(f);
    cr_expect_eq(soft, (unsigned long long)old.rlim_max, "soft limit %llu", soft);
    cr_expect_eq(proc_stop(&gw, SIGTERM, 10000), 0, "log %s", gw.log_path);
    unlink(path);
}

/* --check goes on after the first error: every one, in file order, each with its position, a
 * "did you mean" for typos of keys and upstream names, and the TLS files opened. */
Test(cli, check_reports_every_error_with_suggestions)
{
    char path[128];
    char out[8192];
    const char *want[] = {
        ":2:3: unknown key \"listn\", did you mean \"listen\"? (at listn)",
        ":3:14: expected an integer in 0..64, got 99 (at workers)",
        "nope.pem: cannot open: No such file or directory (at tls.cert)",
        "nope.key: cannot open: No such file or directory (at tls.key)",
        ":5:63: unknown key \"tmeout_ms\", did you mean \"timeout_ms\"?",
        ":7:50: unknown upstream \"patinet\", did you mean \"patient\"? (at routes[0].upstream)",
        ":8:61: unknown key \"timout_ms\", did you mean \"timeout_ms\"? (at routes[1].timout_ms)",
        ":9:79: unknown upstream \"histroy\" (at routes[2].backends[0].upstream)",
    };
    const char *at = out;

    conf_template_write(path, sizeof(path), "cli_many_errors.json", NULL, 0);
    const char *args[] = {"--check", "-c", path, NULL};
    cr_expect_eq(run(args, out, sizeof(out)), 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *p = strstr(at, want[i]);
        cr_expect_not_null(p, "missing, or out of order: %s\nin:\n%s", want[i], out);
        at = p != NULL ? p : at;
    }
    cr_expect_neq(strstr(out, ": 8 errors"), NULL, "%s", out);
    unlink(path);
}

Test(cli, check_reads_the_tls_files)
{
    char dir[] = "/tmp/tg-cli-tls-XXXXXX";
    char conf[256], cert[300], key[300], out[4096];
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/c.json", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs("{\"tls\": {\"cert\": \"cert.pem\", \"key\": \"key.pem\"}}", f);
    fclose(f);
    f = fopen(cert, "w");
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    f = fopen(key, "w");
    fputs("not a key\n", f);
    fclose(f);
    const char *args[] = {"--check", "-c", conf, NULL};
    cr_expect_eq(run(args, out, sizeof(out)), 1);
    cr_expect_neq(strstr(out, "key.pem: no PEM PRIVATE KEY in it (at tls.key)"), NULL, "%s", out);
    cr_expect_null(strstr(out, "tls.cert"), "%s", out);
    f = fopen(key, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    cr_expect_eq(run(args, out, sizeof(out)), 0, "%s", out);
    unlink(conf);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

Test(cli, version_names_the_commit_and_the_libraries)
{
    char out[4096];
    const char *v[] = {"--version", NULL};

    cr_expect_eq(run(v, out, sizeof(out)), 0);
    cr_expect_neq(strstr(out, "tracegate " TG_VERSION_TEXT " (commit "), NULL, "%s", out);
    cr_expect_null(strstr(out, "(commit unknown)"), "built from a checkout: %s", out);
    cr_expect_neq(strstr(out, "libmicrohttpd 0."), NULL, "%s", out);
    cr_expect_neq(strstr(out, "libcurl "), NULL, "%s", out);
    cr_expect_neq(strstr(out, "jansson "), NULL, "%s", out);
    cr_expect_neq(strstr(out, "OpenSSL "), NULL, "%s", out);
}

Test(cli, check_warns_of_a_spool_that_is_not_synced_on_every_commit)
{
    char path[128];
    char out[4096];
    const struct conf_var vars[] = {{"SPOOL_DIR", "/tmp"}};

    conf_template_write(path, sizeof(path), "cli_spool_normal.json", vars, 1);
    const char *args[] = {"--check", "-c", path, NULL};
    cr_expect_eq(run(args, out, sizeof(out)), 0, "%s", out);
    cr_expect(strstr(out, "warning: spool.synchronous is \"normal\"") != NULL, "%s", out);
    cr_expect(strstr(out, ": ok (2 routes") != NULL, "%s", out);
    unlink(path);
}
