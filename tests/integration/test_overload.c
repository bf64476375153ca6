/* upstreams.NAME.max_in_flight: beyond it the gateway answers 503 with Retry-After at once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "overload.json", NULL, 0);
}

static void teardown(void)
{
    cr_expect_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0, "log %s", fx.gw.log_path);
    proc_stop(&fx.stub, SIGTERM, 5000);
    unlink(fx.conf_path);
}

TestSuite(overload, .init = setup, .fini = teardown, .timeout = 30);

Test(overload, third_call_is_shed_with_503_and_retry_after)
{
    const char *slow = "GET /s/x?delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n";
    int a = tcp_connect(fx.gw.ports[0]);
    int b = tcp_connect(fx.gw.ports[0]);
    struct http_resp r;
    char ra[32];
    char *resp;
    size_t len;

    cr_assert(a >= 0 && b >= 0);
    cr_assert_eq(tcp_send(a, slow, strlen(slow)), 0);
    cr_assert_eq(tcp_send(b, slow, strlen(slow)), 0);
    usleep(200000);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/s/fast", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_lt(r.total_ms, 300.0, "shed, not queued: %.1f ms", r.total_ms);
    cr_expect_not_null(http_header(&r, "Retry-After", ra, sizeof(ra)));
    cr_expect(strstr(r.body, "\"trace_id\"") != NULL, "%s", r.body);
    http_resp_free(&r);
    /* The two slow calls are unharmed, and once they are done a new call goes through. */
    resp = tcp_read_all(a, 2000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    free(resp);
    resp = tcp_read_all(b, 2000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    free(resp);
    close(a);
    close(b);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/s/fast", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    http_resp_free(&r);
}

/* The limit is the upstream's, all workers together: four slow calls on four connections
 * (spread over two workers by the kernel) leave exactly two answered 503, whichever worker
 * took which. */
Test(overload, the_limit_counts_every_worker_together)
{
    const char *slow = "GET /s/x?delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n";
    struct proc gw2;
    char path[128];
    struct conf_var port = {"STUB_PORT_0", NULL};
    char port_text[16];
    int fd[4], shed = 0, ok = 0;

    snprintf(port_text, sizeof(port_text), "%d", fx.stub.ports[0]);
    port.value = port_text;
    conf_template_write(path, sizeof(path), "overload_shared.json", &port, 1);
    cr_assert_eq(gateway_start(&gw2, path, NULL), 0, "gateway did not start: %s", gw2.log_path);
    for (int i = 0; i < 4; i++) {
        fd[i] = tcp_connect(gw2.ports[0]);
        cr_assert_geq(fd[i], 0);
        cr_assert_eq(tcp_send(fd[i], slow, strlen(slow)), 0);
        usleep(50000); /* in order: the first two take the places */
    }
    for (int i = 0; i < 4; i++) {
        size_t len;
        char *resp = tcp_read_all(fd[i], 3000, &len);
        shed += strncmp(resp, "HTTP/1.1 503", 12) == 0;
        ok += strncmp(resp, "HTTP/1.1 200", 12) == 0;
        free(resp);
        close(fd[i]);
    }
    cr_expect_eq(shed, 2, "%d shed, %d answered", shed, ok);
    cr_expect_eq(ok, 2, "%d shed, %d answered", shed, ok);
    cr_expect_eq(proc_stop(&gw2, SIGTERM, 10000), 0, "log %s", gw2.log_path);
    unlink(path);
}
