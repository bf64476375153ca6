/* Every way a request can end, checked two ways: the status in its request.done line and the
 * class /metrics counted it under must agree (one decision, tg_req_end, feeds both). Endings:
 * answered, deadline, client gone with and without cancel_on_disconnect, overload, too large,
 * bad request, and a drain that cancels what still waits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

#define N_CLASSES 5

static const char *const classes[N_CLASSES] = {"2xx", "3xx", "4xx", "5xx", "499"};

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "endings.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(endings, .init = setup, .fini = teardown, .timeout = 60);

/* The value of the sample line named name in a /metrics body, -1 when absent. */
static long long sample(const char *body, const char *name)
{
    size_t n = strlen(name);
    const char *p = body;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == ' ') {
            return strtoll(p + n + 1, NULL, 10);
        }
        p += n;
    }
    return -1;
}

/* Reads the response counters by class into out, over a new connection. */
static void scrape(long long out[N_CLASSES])
{
    struct http_resp r;
    char name[64];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/metrics", NULL, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    for (size_t i = 0; i < N_CLASSES; i++) {
        snprintf(name, sizeof(name), "tracegate_responses_total{class=\"%s\"}", classes[i]);
        out[i] = sample(r.body, name);
        cr_assert_geq(out[i], 0, "%s missing: %s", name, r.body);
    }
    http_resp_free(&r);
}

static size_t class_of(long status)
{
    if (status == 499) {
        return 4;
    }
    return status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0;
}

/* The status of the request.done line carrying trace id, waiting for it; -1 when none came. */
static long logged_status(const char *id, long long *upstream_status)
{
    const char *needles[] = {"\"event\":\"request.done\"", id, NULL};
    char *log;
    char *line;
    char *save = NULL;
    long status = -1;

    if (proc_log_wait(&fx.gw, needles, 1, 3000) != 1) {
        return -1;
    }
    log = proc_log(&fx.gw);
    for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_t *j;
        if (strstr(line, id) == NULL || strstr(line, "request.done") == NULL) {
            continue;
        }
        j = json_loads(line, 0, NULL);
        status = (long)json_integer_value(json_object_get(j, "status"));
        if (upstream_status != NULL) {
            *upstream_status = json_integer_value(json_object_get(j, "upstream_status"));
        }
        json_decref(j);
        break;
    }
    free(log);
    return status;
}

/* The request with trace id ended as want: its log line says so, and /metrics counted exactly
 * it under want's class since before (besides the scrape that read before). */
static void expect_ending(const long long before[N_CLASSES], const char *id, long want)
{
    long long after[N_CLASSES];
    long got = logged_status(id, NULL);

    cr_assert_eq(got, want, "request %s logged %ld, not %ld (log %s)", id, got, want,
                 fx.gw.log_path);
    scrape(after);
    for (size_t i = 0; i < N_CLASSES; i++) {
        long long d = after[i] - before[i];
        long long expected = (i == class_of(want) ? 1 : 0) + (i == 0 ? 1 : 0);
        cr_expect_eq(d, expected, "%s: class %s moved by %lld, expected %lld (log %s)", id,
                     classes[i], d, expected, fx.gw.log_path);
    }
}

/* Sends raw bytes on a new connection; returns the fd (left open). */
static int send_raw(const char *text)
{
    int fd = tcp_connect(fx.gw.ports[0]);

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, text, strlen(text)), 0);
    return fd;
}

/* Sends text, reads the answer to the end, returns its status (0 when none). */
static long raw_status(const char *text)
{
    int fd = send_raw(text);
    size_t len;
    char *resp = tcp_read_all(fd, 3000, &len);
    long status = strncmp(resp, "HTTP/1.1 ", 9) == 0 ? strtol(resp + 9, NULL, 10) : 0;

    free(resp);
    close(fd);
    return status;
}

Test(endings, answered)
{
    long long before[N_CLASSES];

    scrape(before);
    cr_expect_eq(raw_status("GET /ok/x HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-ok\r\n"
                            "Connection: close\r\n\r\n"),
                 200);
    expect_ending(before, "end-ok", 200);
}

Test(endings, deadline)
{
    long long before[N_CLASSES];

    scrape(before);
    cr_expect_eq(raw_status("GET /short/x?delay_ms=2000 HTTP/1.1\r\nHost: h\r\n"
                            "X-Trace-Id: end-deadline\r\nConnection: close\r\n\r\n"),
                 504);
    expect_ending(before, "end-deadline", 504);
}

Test(endings, client_gone_cancels)
{
    long long before[N_CLASSES];
    int fd;

    scrape(before);
    fd = send_raw("GET /ok/x?delay_ms=2000 HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-gone\r\n\r\n");
    usleep(150000);
    close(fd);
    expect_ending(before, "end-gone", 499);
}

/* On a route that lets the call finish, the upstream's answer is kept in the log, but the
 * request is still a 499: its answer never reached the client. */
Test(endings, client_gone_without_cancel_is_499_too)
{
    long long before[N_CLASSES];
    long long upstream = 0;
    int fd;

    scrape(before);
    fd = send_raw("POST /keep/x?delay_ms=400 HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-keep\r\n"
                  "Content-Length: 2\r\n\r\n{}");
    usleep(150000);
    close(fd);
    expect_ending(before, "end-keep", 499);
    cr_expect_eq(logged_status("end-keep", &upstream), 499);
    cr_expect_eq(upstream, 200, "the call finished and its status is logged");
}

Test(endings, overload)
{
    long long before[N_CLASSES];
    int slow;

    slow = send_raw("GET /one/x?delay_ms=800 HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-hold\r\n"
                    "Connection: close\r\n\r\n");
    usleep(150000);
    scrape(before);
    cr_expect_eq(raw_status("GET /one/y HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-shed\r\n"
                            "Connection: close\r\n\r\n"),
                 503);
    expect_ending(before, "end-shed", 503);
    close(slow);
}

Test(endings, too_large)
{
    long long before[N_CLASSES];

    scrape(before);
    cr_expect_eq(raw_status("POST /ok/x HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-big\r\n"
                            "Content-Length: 65\r\n\r\n"),
                 413);
    expect_ending(before, "end-big", 413);
}

Test(endings, bad_request)
{
    long long before[N_CLASSES];

    scrape(before);
    cr_expect_eq(raw_status("POST /ok/x HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-bad\r\n"
                            "Content-Length: 1\r\nContent-Length: 2\r\n\r\nx"),
                 400);
    expect_ending(before, "end-bad", 400);
}

/* A drain cancels what still waits when its grace runs out: 503, logged and counted so. The
 * metrics are read on a request kept in its body phase (not waiting on upstreams, so not
 * cancelled), finished after the drained one got its answer. */
Test(endings, drain)
{
    long long before[N_CLASSES];
    long long after[N_CLASSES];
    const char *scrape_head = "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{";
    int waiting;
    int held;
    size_t len;
    char *resp;
    char name[64];

    scrape(before);
    waiting = send_raw("GET /ok/x?delay_ms=5000 HTTP/1.1\r\nHost: h\r\nX-Trace-Id: end-drain\r\n"
                       "\r\n");
    held = send_raw(scrape_head);
    usleep(150000);
    proc_signal(&fx.gw, SIGTERM);
    resp = tcp_read_all(waiting, 3000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 503", 12) == 0, "%.80s", resp);
    cr_expect(strstr(resp, "\"error\":\"shutting down\"") != NULL, "%s", resp);
    free(resp);
    close(waiting);
    cr_assert_eq(logged_status("end-drain", NULL), 503, "log %s", fx.gw.log_path);
    cr_assert_eq(tcp_send(held, "}", 1), 0);
    resp = tcp_read_all(held, 3000, &len);
    close(held);
    cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    for (size_t i = 0; i < N_CLASSES; i++) {
        long long d;
        snprintf(name, sizeof(name), "tracegate_responses_total{class=\"%s\"}", classes[i]);
        after[i] = sample(strstr(resp, "\r\n\r\n") + 4, name);
        d = after[i] - before[i];
        cr_expect_eq(d, (i == 3 ? 1 : 0) + (i == 0 ? 1 : 0), "class %s moved by %lld", classes[i],
                     d);
    }
    free(resp);
}
