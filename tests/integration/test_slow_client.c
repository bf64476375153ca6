/* A client that trickles its request is cut when limits.client_timeout_ms has passed since
 * its connection was ready for a request; one that talks at normal speed is not. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct proc stub;
static struct proc gw;
static char conf_path[128];

static void setup(void)
{
    const char *specs[] = {"0:test"};
    char port[16];
    const struct conf_var vars[] = {{"STUB_PORT_0", port}};

    cr_assert_eq(stub_start(&stub, specs, 1, NULL), 0);
    snprintf(port, sizeof(port), "%d", stub.ports[0]);
    conf_template_write(conf_path, sizeof(conf_path), "slow_client.json", vars, 1);
    cr_assert_eq(gateway_start(&gw, conf_path, NULL), 0, "log %s", gw.log_path);
}

static void teardown(void)
{
    cr_expect_eq(proc_stop(&gw, SIGTERM, 10000), 0, "log %s", gw.log_path);
    proc_stop(&stub, SIGTERM, 5000);
    unlink(conf_path);
}

TestSuite(slow_client, .init = setup, .fini = teardown, .timeout = 30);

/* Sends text one byte every gap_ms until the peer closes; returns ms until it did, or -1 when
 * all was sent. */
static long trickle(int fd, const char *text, int gap_ms)
{
    uint64_t t0 = now_us();

    for (size_t i = 0; text[i] != '\0'; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        if (poll(&p, 1, gap_ms) == 1 && recv(fd, &c, 1, MSG_PEEK) <= 0) {
            return (long)((now_us() - t0) / 1000);
        }
        if (send(fd, text + i, 1, MSG_NOSIGNAL) != 1) {
            return (long)((now_us() - t0) / 1000);
        }
    }
    return -1;
}

Test(slow_client, trickled_head_is_cut_at_the_limit)
{
    int fd = tcp_connect(gw.ports[0]);
    long ms;

    cr_assert_geq(fd, 0);
    /* 60 bytes at one per 100 ms would take 6 s; each byte resets an idle timer. */
    ms = trickle(fd, "GET /s/x HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
                 100);
    close(fd);
    cr_expect(ms >= 900 && ms < 2500, "closed after %ld ms", ms);
}

Test(slow_client, trickled_body_is_cut_at_the_limit)
{
    int fd = tcp_connect(gw.ports[0]);
    const char *head = "POST /s/x HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n";
    long ms;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, head, strlen(head)), 0);
    ms = trickle(fd, "01234567890123456789012345678901234567890123456789", 100);
    close(fd);
    cr_expect(ms >= 800 && ms < 2500, "closed after %ld ms", ms);
}

Test(slow_client, keep_alive_at_normal_speed_is_not_cut)
{
    int fd = tcp_connect(gw.ports[0]);
    const char *req = "GET /s/x HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];

    cr_assert_geq(fd, 0);
    /* Four requests 600 ms apart: 2.4 s in all, each one quick. */
    for (int i = 0; i < 4; i++) {
        ssize_t n;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(tcp_send(fd, req, strlen(req)), 0, "request %d", i);
        cr_assert_eq(poll(&p, 1, 2000), 1, "no answer to request %d", i);
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        cr_assert_gt(n, 12, "connection closed at request %d", i);
        buf[n] = '\0';
        cr_expect(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%.60s", buf);
        usleep(600000);
    }
    close(fd);
}
