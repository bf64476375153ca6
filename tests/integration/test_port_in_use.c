/* A second gateway on a port another one listens on: refused with a clear error, unless the
 * conf asks to share it (reuse_port, for a zero-downtime binary upgrade). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"

static struct proc first;
static char first_conf[128];

static void setup(void)
{
    const struct conf_var vars[] = {{"PORT", "0"}, {"REUSE", "false"}, {"ADMIN_PORT", "0"}};

    conf_template_write(first_conf, sizeof(first_conf), "port_in_use.json", vars, 3);
    cr_assert_eq(gateway_start(&first, first_conf, NULL), 0, "log %s", first.log_path);
}

static void teardown(void)
{
    int rc = proc_stop(&first, SIGTERM, 10000);

    unlink(first_conf);
    cr_expect(rc == 0 || rc == -1, "first gateway exit %d, log %s", rc, first.log_path);
}

TestSuite(port_in_use, .init = setup, .fini = teardown, .timeout = 60);

/* Starts a second gateway on the first one's port (and admin port when same_admin), reuse_port
 * as given. Returns 0 when it listens. */
static int start_second(struct proc *p, char *conf, size_t cap, bool reuse, bool same_admin)
{
    char port[16], admin[16];
    struct conf_var vars[3] = {
        {"PORT", port}, {"REUSE", reuse ? "true" : "false"}, {"ADMIN_PORT", admin}};
    const char *argv[] = {TG_BINARY, "-c", conf, NULL};

    snprintf(port, sizeof(port), "%d", first.ports[0]);
    snprintf(admin, sizeof(admin), "%d", same_admin ? first.admin_port : 0);
    conf_template_write(conf, cap, "port_in_use.json", vars, 3);
    return proc_spawn(p, argv, 1);
}

static long get(int port)
{
    struct http_resp r;
    long status;

    if (http_do(port, "GET", "/healthz", NULL, NULL, 0, 2000, &r) != 0) {
        http_resp_free(&r);
        return -1;
    }
    status = r.status;
    http_resp_free(&r);
    return status;
}

Test(port_in_use, a_taken_port_fails_the_start_with_a_clear_error)
{
    struct proc second;
    char conf[128];
    const char *err[] = {"\"event\":\"listen.error\"", "already in use", "reuse_port", NULL};

    cr_assert_neq(start_second(&second, conf, sizeof(conf), false, false), 0,
                  "started on a taken port: %s", second.log_path);
    cr_expect_eq(proc_stop(&second, SIGTERM, 5000), -1, "still running: %s", second.log_path);
    cr_expect_eq(proc_log_count(&second, err), 1, "log %s", second.log_path);
    cr_expect_eq(get(first.ports[0]), 200, "the first gateway still serves");
    unlink(conf);
}

Test(port_in_use, a_taken_admin_port_too)
{
    struct proc second;
    char conf[128], admin[16];
    const struct conf_var vars[3] = {{"PORT", "0"}, {"REUSE", "false"}, {"ADMIN_PORT", admin}};
    const char *argv[] = {TG_BINARY, "-c", conf, NULL};
    const char *err[] = {"\"event\":\"listen.error\"", "admin.listen", NULL};

    snprintf(admin, sizeof(admin), "%d", first.admin_port);
    conf_template_write(conf, sizeof(conf), "port_in_use.json", vars, 3);
    cr_assert_neq(proc_spawn(&second, argv, 1), 0, "started: %s", second.log_path);
    cr_expect_eq(proc_log_count(&second, err), 1, "log %s", second.log_path);
    unlink(conf);
    /* With reuse_port both ports are shared. */
    cr_assert_eq(start_second(&second, conf, sizeof(conf), true, true), 0, "log %s",
                 second.log_path);
    cr_expect_eq(proc_stop(&second, SIGTERM, 10000), 0, "log %s", second.log_path);
    unlink(conf);
}

/* The binary upgrade: the new process starts beside the old one on the same port, the old
 * one drains, and the port answers all along. */
Test(port_in_use, reuse_port_lets_a_new_process_take_over)
{
    struct proc second;
    char conf[128];

    cr_assert_eq(start_second(&second, conf, sizeof(conf), true, false), 0, "log %s",
                 second.log_path);
    cr_expect_eq(second.ports[0], first.ports[0]);
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(get(first.ports[0]), 200);
    }
    cr_expect_eq(proc_stop(&first, SIGTERM, 10000), 0, "log %s", first.log_path);
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(get(first.ports[0]), 200, "after the old one left");
    }
    cr_expect_eq(proc_stop(&second, SIGTERM, 10000), 0, "log %s", second.log_path);
    unlink(conf);
}
