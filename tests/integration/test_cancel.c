/* A client that leaves while its request waits on an upstream: the gateway closes the upstream
 * connection at once (unless the route says the call must finish), logs 499, and leaks no fd.
 * Close times are measured where they matter, at the stub: its records carry CLOCK_MONOTONIC
 * t_us, the same clock as the test's now_us(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define MANY 1000

static struct fixture fx;

/* The gateway inherits the limit: it holds a client and an upstream socket per request. */
static void raise_nofile(void)
{
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 8192) {
        rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, 2 * MANY + 200, "RLIMIT_NOFILE hard limit %llu is too low",
                  (unsigned long long)rl.rlim_max);
}

static void setup(void)
{
    const char *specs[] = {"0:test"};

    raise_nofile();
    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "cancel.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(cancel, .init = setup, .fini = teardown, .timeout = 120);

static const char *event_of(const json_t *rec)
{
    const char *e = json_string_value(json_object_get(rec, "event"));

    return e == NULL ? "" : e;
}

static json_int_t int_of(const json_t *rec, const char *key)
{
    return json_integer_value(json_object_get(rec, key));
}

/* The stub's first record of kind event for connection conn_id (or, for "request", carrying
 * X-Trace-Id trace when conn_id < 0); waits up to timeout_ms. New reference or NULL. */
static json_t *wait_record(const char *event, json_int_t conn_id, const char *trace, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;

    do {
        json_t *all = stub_records(fx.record);
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o)
        {
            const char *id = record_header(o, "X-Trace-Id");
            if (strcmp(event_of(o), event) == 0 &&
                (conn_id >= 0 ? int_of(o, "conn_id") == conn_id
                              : id != NULL && strcmp(id, trace) == 0)) {
                json_incref(o);
                json_decref(all);
                return o;
            }
        }
        json_decref(all);
        usleep(2000);
    } while (now_us() < end);
    return NULL;
}

/* Opens a raw connection and sends one GET with X-Trace-Id trace; returns the fd. */
static int send_get(const char *target, const char *trace)
{
    char req[512];
    int fd = tcp_connect(fx.gw.ports[0]);
    int n;

    cr_assert_geq(fd, 0, "connect to the gateway failed");
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nX-Trace-Id: %s\r\n\r\n", target,
                 trace);
    cr_assert_eq(tcp_send(fd, req, (size_t)n), 0);
    return fd;
}

static double us_to_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* One hang request; the client leaves by FIN (reset false) or RST; returns how long after the
 * client's close() the stub saw its upstream connection close, in us. */
static uint64_t leave_and_measure(const char *trace, bool reset)
{
    int fd = send_get("/hang/x?hang=1", trace);
    json_t *req = wait_record("request", -1, trace, 5000);
    json_t *cl;
    json_int_t conn;
    uint64_t t0;
    uint64_t dt;

    cr_assert_not_null(req, "%s never reached the stub", trace);
    conn = int_of(req, "conn_id");
    json_decref(req);
    t0 = now_us();
    if (reset) {
        tcp_reset(fd);
    } else {
        close(fd);
    }
    cl = wait_record("close", conn, NULL, 2000);
    cr_assert_not_null(cl, "%s: the upstream connection is still open 2 s after the client left",
                       trace);
    cr_expect_str_eq(json_string_value(json_object_get(cl, "by")), "peer");
    cr_expect_str_eq(json_string_value(json_object_get(cl, "while")), "waiting");
    dt = (uint64_t)int_of(cl, "t_us") - t0;
    json_decref(cl);
    return dt;
}

/* Runs n rounds, asserts each under 100 ms, logs p50 and max. */
static void expect_prompt_close(const char *tag, bool reset)
{
    enum { N = 7 };
    uint64_t dt[N];

    for (int i = 0; i < N; i++) {
        char trace[32];
        char field[64];
        const char *line[] = {"\"event\":\"request.done\"", field, "\"status\":499",
                              "\"client_gone\":true", NULL};
        snprintf(trace, sizeof(trace), "cx-%s-%d", tag, i);
        snprintf(field, sizeof(field), "\"trace_id\":\"%s\"", trace);
        dt[i] = leave_and_measure(trace, reset);
        cr_expect_lt(dt[i], 100000u, "round %d: upstream closed %.1f ms after the client", i,
                     us_to_ms(dt[i]));
        cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 2000), 1, "no 499 access line for %s: %s",
                     trace, fx.gw.log_path);
    }
    qsort(dt, N, sizeof(dt[0]), cmp_u64);
    cr_log_info("%s: client close -> upstream close p50 %.2f ms, max %.2f ms", tag,
                us_to_ms(dt[N / 2]), us_to_ms(dt[N - 1]));
}

Test(cancel, client_fin_closes_the_upstream_within_100ms)
{
    expect_prompt_close("fin", false);
}

Test(cancel, client_rst_closes_the_upstream_within_100ms)
{
    expect_prompt_close("rst", true);
}

Test(cancel, client_leaving_a_kept_alive_connection_closes_the_upstream)
{
    const char *second = "GET /hang/x?hang=1 HTTP/1.1\r\nHost: x\r\nX-Trace-Id: cx-ka-2\r\n\r\n";
    int fd = send_get("/hang/x?delay_ms=10", "cx-ka-1");
    json_t *req;
    json_t *cl;
    char *resp;
    size_t len;
    uint64_t t0;
    uint64_t dt;

    /* The hang-up watch of the first request ends when it is answered; the second request on
     * the same connection must get one again. */
    resp = tcp_read_all(fd, 300, &len);
    cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "first answer: %.200s", resp);
    free(resp);
    cr_assert_eq(tcp_send(fd, second, strlen(second)), 0);
    req = wait_record("request", -1, "cx-ka-2", 5000);
    cr_assert_not_null(req, "the second request never reached the stub");
    t0 = now_us();
    close(fd);
    cl = wait_record("close", int_of(req, "conn_id"), NULL, 2000);
    cr_assert_not_null(cl, "the upstream connection is still open 2 s after the client left");
    dt = (uint64_t)int_of(cl, "t_us") - t0;
    cr_log_info("kept-alive client close -> upstream close %.2f ms", us_to_ms(dt));
    cr_expect_lt(dt, 100000u);
    cr_expect_str_eq(json_string_value(json_object_get(cl, "while")), "waiting");
    json_decref(cl);
    json_decref(req);
}

Test(cancel, route_without_cancel_lets_the_call_finish)
{
    const char *done[] = {"\"event\":\"request.done\"", "\"trace_id\":\"cx-keep\"",
                          "\"upstream_status\":200", "\"client_gone\":true", NULL};
    const char *answered[] = {"\"event\":\"stub.request\"", "\"trace_id\":\"cx-keep\"",
                              "\"status\":200", NULL};
    int fd = send_get("/keep/x?delay_ms=500", "cx-keep");
    json_t *req = wait_record("request", -1, "cx-keep", 5000);
    json_t *cl;
    json_int_t conn;
    json_int_t t_req;

    cr_assert_not_null(req, "the request never reached the stub");
    conn = int_of(req, "conn_id");
    t_req = int_of(req, "t_us");
    json_decref(req);
    close(fd);
    /* The upstream answers 500 ms after it got the request; the gateway's access line follows. */
    cr_expect_eq(proc_log_wait(&fx.gw, done, 1, 2000), 1,
                 "no request.done with the upstream outcome: %s", fx.gw.log_path);
    cr_expect_eq(proc_log_wait(&fx.stub, answered, 1, 2000), 1,
                 "the stub did not send its answer: %s", fx.stub.log_path);
    /* A kept-alive upstream connection may stay open; if it closed, it was after the answer. */
    cl = wait_record("close", conn, NULL, 0);
    if (cl != NULL) {
        cr_expect_str_neq(json_string_value(json_object_get(cl, "while")), "waiting");
        cr_expect_geq(int_of(cl, "t_us") - t_req, 500000, "closed before the answer was due");
        json_decref(cl);
    }
}

/* Conn ids of the stub's request records whose X-Trace-Id starts with prefix (at most cap). */
static size_t request_conns(const char *prefix, json_int_t *ids, size_t cap)
{
    json_t *all = stub_records(fx.record);
    size_t n = 0;
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        const char *id = record_header(o, "X-Trace-Id");
        if (n < cap && strcmp(event_of(o), "request") == 0 && id != NULL &&
            strncmp(id, prefix, strlen(prefix)) == 0) {
            ids[n++] = int_of(o, "conn_id");
        }
    }
    json_decref(all);
    return n;
}

static int cmp_conn(const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *)a;
    json_int_t y = *(const json_int_t *)b;

    return x < y ? -1 : x > y;
}

/* Close times (t_us) of the connections in ids (sorted), into t; returns how many closed. */
static size_t close_times(const json_int_t *ids, size_t n, uint64_t *t)
{
    json_t *all = stub_records(fx.record);
    size_t found = 0;
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        json_int_t id = int_of(o, "conn_id");
        const json_int_t *hit;
        if (strcmp(event_of(o), "close") != 0) {
            continue;
        }
        hit = bsearch(&id, ids, n, sizeof(*ids), cmp_conn);
        if (hit != NULL && t[hit - ids] == 0) {
            t[hit - ids] = (uint64_t)int_of(o, "t_us");
            found++;
        }
    }
    json_decref(all);
    return found;
}

/* Sends MANY hang requests, one connection each; returns when the stub has them all. */
static void open_many(int *fds, json_int_t *ids)
{
    uint64_t end;
    size_t n = 0;

    for (int i = 0; i < MANY; i++) {
        char trace[32];
        snprintf(trace, sizeof(trace), "cx-many-%d", i);
        fds[i] = send_get("/hang/x?hang=1", trace);
    }
    end = now_us() + 30000000u;
    while ((n = request_conns("cx-many-", ids, MANY)) < MANY && now_us() < end) {
        usleep(50000);
    }
    cr_assert_eq(n, MANY, "the stub got %zu of %d requests", n, MANY);
    qsort(ids, MANY, sizeof(*ids), cmp_conn);
}

Test(cancel, thousand_clients_leaving_at_once_close_every_upstream)
{
    const char *gone[] = {"\"event\":\"request.done\"", "\"trace_id\":\"cx-many-", "\"status\":499",
                          NULL};
    static int fds[MANY];
    static json_int_t ids[MANY];
    static uint64_t t[MANY];
    int before = proc_fd_count(fx.gw.pid);
    int during;
    int after;
    uint64_t t0;
    uint64_t end;
    size_t closed = 0;

    cr_assert_gt(before, 0);
    open_many(fds, ids);
    during = proc_fd_count(fx.gw.pid);
    /* Proves the count sees the sockets, so the check below can fail. */
    cr_expect_geq(during, before + 2 * MANY, "fds: %d before, %d with %d requests", before, during,
                  MANY);
    t0 = now_us();
    for (int i = 0; i < MANY; i++) {
        close(fds[i]);
    }
    end = t0 + 10000000u;
    for (;;) {
        memset(t, 0, sizeof(t));
        closed = close_times(ids, MANY, t);
        if (closed == MANY || now_us() >= end) {
            break;
        }
        usleep(20000);
    }
    cr_assert_eq(closed, MANY, "%zu of %d upstream connections closed", closed, MANY);
    for (size_t i = 0; i < MANY; i++) {
        t[i] -= t0;
    }
    qsort(t, MANY, sizeof(t[0]), cmp_u64);
    cr_log_info("%d clients left: upstream closed p50 %.1f ms, max %.1f ms after the first close",
                MANY, us_to_ms(t[MANY / 2]), us_to_ms(t[MANY - 1]));
    cr_expect_lt(t[MANY - 1], 2000000u, "last upstream close %.1f ms after the clients left",
                 us_to_ms(t[MANY - 1]));
    end = now_us() + 2000000u;
    while ((after = proc_fd_count(fx.gw.pid)) > before + 8 && now_us() < end) {
        usleep(20000);
    }
    cr_expect_leq(after, before + 8, "fds: %d before, %d after", before, after);
    cr_expect_eq(proc_log_wait(&fx.gw, gone, MANY, 2000), MANY, "499 access lines: %s",
                 fx.gw.log_path);
}
