/* What `make run` starts: docker/demo.sh with the demo ePRO services and the default conf. It
 * binds the demo's fixed service ports (9101-9104), so it skips when they are taken. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"

static bool port_open(int port)
{
    int fd = tcp_connect(port);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

/* Stops the demo service name by the pid demo.sh wrote in build/demo/, and waits until it is
 * gone (up to 5 s). */
static void stop_service(const char *build, const char *name)
{
    char path[1200];
    char text[32] = "";
    FILE *f;
    long pid;

    snprintf(path, sizeof(path), "%s/demo/%s.pid", build, name);
    f = fopen(path, "r");
    cr_assert_not_null(f, "no %s", path);
    cr_assert_not_null(fgets(text, sizeof(text), f));
    fclose(f);
    pid = strtol(text, NULL, 10);
    cr_assert_gt(pid, 1, "%s", path);
    cr_assert_eq(kill((pid_t)pid, SIGTERM), 0);
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++) {
        usleep(50000);
    }
}

Test(demo, make_run_serves_submit_and_stops_cleanly, .timeout = 60)
{
    char build[1024];
    char script[1024];
    char conf[1024];
    char port_s[16];
    int port = tcp_free_port();
    char log_path[] = "/tmp/tg-demo-XXXXXX";
    int log_fd = mkstemp(log_path);
    char key[96];
    const char *h[] = {"Content-Type: application/json", "X-Trace-Id: demo-trace-1",
                       "X-Patient-Id: p1", key, NULL};
    const char *sub = "{\"patient_id\":\"p1\",\"answers\":[1,2]}";
    struct http_resp r;
    pid_t pid;
    int status;
    json_t *j;

    if (port_open(9101) || port_open(9102) || port_open(9103) || port_open(9104) ||
        port_open(port)) {
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
        /* The forked child has one thread: setenv is safe here. */
        setenv("BUILD", build, 1); /* NOLINT(concurrency-mt-unsafe) */
        setenv("CONF", conf, 1);   /* NOLINT(concurrency-mt-unsafe) */
        setenv("PORT", port_s, 1); /* NOLINT(concurrency-mt-unsafe) */
        /* Not the conf's 9901: other gateways may run on this host. */
        setenv("ADMIN_PORT", "0", 1); /* NOLINT(concurrency-mt-unsafe) */
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execl("/bin/bash", "bash", script, (char *)NULL);
        _exit(127);
    }
    close(log_fd);
    for (int i = 0; i < 300 && !port_open(port); i++) {
        usleep(50000);
    }
    cr_assert(port_open(port), "the demo did not start: %s", log_path);
    /* /submit is durable in the demo: a key of its own per run (the demo spool outlives it). */
    snprintf(key, sizeof(key), "Idempotency-Key: \"demo-%d-%ld\"", (int)getpid(), (long)time(NULL));
    cr_assert_eq(http_do(port, "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    j = json_loads(r.body, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "message")), "success");
    json_decref(j);
    char first[256];
    snprintf(first, sizeof(first), "%s", r.body);
    http_resp_free(&r);
    cr_assert_eq(http_do(port, "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
    cr_expect_eq(r.status, 201, "the same key again: the first answer");
    cr_expect_str_eq(r.body, first);
    http_resp_free(&r);
    cr_assert_eq(http_do(port, "GET", "/patients/p1/report", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    j = json_loads(r.body, 0, NULL);
    cr_expect(json_is_object(json_object_get(j, "patient")), "%s", r.body);
    cr_expect(json_is_object(json_object_get(j, "history")), "%s", r.body);
    json_decref(j);
    http_resp_free(&r);

    /* One questionnaire replica stopped on its own: submissions keep working on the other. */
    stop_service(build, "questionnaire-1");
    cr_expect(!port_open(9101), "questionnaire-1 still listens");
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(http_do(port, "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
        cr_expect_eq(r.status, 201, "submission %d with one replica down: %s", i, r.body);
        http_resp_free(&r);
    }

    /* Ctrl-C: the script stops everything and nothing keeps listening. */
    kill(pid, SIGINT);
    for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        usleep(50000);
    }
    cr_expect(!port_open(port) && !port_open(9102) && !port_open(9103) && !port_open(9104),
              "something still listens after Ctrl-C: %s", log_path);
    unlink(log_path);
}
