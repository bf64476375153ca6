/* What `make run` starts: docker/demo.sh with the demo ePRO services and the default conf. It
 * binds the demo's fixed service ports (9101-9103), so it skips when they are taken. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/spawn.h"

static bool port_open(int port)
{
    int fd = tcp_connect(port);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

Test(demo, make_run_serves_submit_and_stops_cleanly, .timeout = 60)
{
    char build[1024];
    char script[1024];
    char conf[1024];
    char port_s[16];
    int port = 20000 + (int)(getpid() % 20000);
    const char *h[] = {"Content-Type: application/json", "X-Trace-Id: demo-trace-1", NULL};
    const char *sub = "{\"patient_id\":\"p1\",\"answers\":[1,2]}";
    struct http_resp r;
    pid_t pid;
    int status;
    json_t *j;

    if (port_open(9101) || port_open(9102) || port_open(9103) || port_open(port)) {
        cr_skip_test("demo ports are in use");
    }
    char binary[1024];

    snprintf(binary, sizeof(binary), "%s", TG_BINARY);
    snprintf(build, sizeof(build), "%s", dirname(binary));
    snprintf(script, sizeof(script), "%s/docker/demo.sh", TG_SOURCE_DIR);
    snprintf(conf, sizeof(conf), "%s/conf/tracegate.json", TG_SOURCE_DIR);
    snprintf(port_s, sizeof(port_s), "%d", port);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* demo.sh's trap then stops what it started */
        setenv("BUILD", build, 1);
        setenv("CONF", conf, 1);
        setenv("PORT", port_s, 1);
        freopen("/dev/null", "w", stdout);
        execl("/bin/bash", "bash", script, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !port_open(port); i++) {
        usleep(50000);
    }
    cr_assert(port_open(port), "the demo did not start");
    cr_assert_eq(http_do(port, "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    j = json_loads(r.body, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "message")), "success");
    json_decref(j);
    http_resp_free(&r);
    cr_assert_eq(http_do(port, "GET", "/patients/p1/report", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    j = json_loads(r.body, 0, NULL);
    cr_expect(json_is_object(json_object_get(j, "patient")), "%s", r.body);
    cr_expect(json_is_object(json_object_get(j, "history")), "%s", r.body);
    json_decref(j);
    http_resp_free(&r);

    /* Ctrl-C: the script stops both and nothing keeps listening. */
    kill(pid, SIGINT);
    for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        usleep(50000);
    }
    cr_expect(!port_open(port) && !port_open(9101) && !port_open(9102) && !port_open(9103),
              "something still listens after Ctrl-C");
}
