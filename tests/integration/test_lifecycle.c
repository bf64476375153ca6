/* Shutdown and reload through the real binary: SIGTERM drains (requests in flight finish,
 * readiness turns 503, the rest are cancelled with 503 when the grace is over, exit 0), and
 * SIGHUP swaps the conf only when the new one is valid, without touching requests in flight.
 * Each test starts its own gateway, since most of them end it. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct proc stub;
static struct proc gw;
static char conf_path[128];
static char record[256];

static void setup(void)
{
    const char *specs[] = {"0:test"};

    conf_path[0] = '\0';
    temp_path(record, sizeof(record), "rec");
    cr_assert_eq(stub_start(&stub, specs, 1, record), 0, "stub did not start: %s", stub.log_path);
}

static void teardown(void)
{
    int stub_rc = proc_stop(&stub, SIGTERM, 5000);

    if (gw.pid > 0) {
        int gw_rc = proc_stop(&gw, SIGTERM, 10000);
        cr_expect_eq(gw_rc, 0, "gateway exit %d, log %s", gw_rc, gw.log_path);
    }
    if (conf_path[0] != '\0') {
        unlink(conf_path);
    }
    unlink(record);
    cr_expect_eq(stub_rc, 0, "stub exit %d, log %s", stub_rc, stub.log_path);
}

TestSuite(lifecycle, .init = setup, .fini = teardown, .timeout = 60);

/* The values of the placeholders in the conf/lifecycle_ templates: the stub's port and the
 * shutdown grace. */
static char port_text[16];
static char grace_text[16];
static const struct conf_var conf_vars[] = {{"STUB_PORT_0", port_text}, {"GRACE_MS", grace_text}};

static void set_conf_vars(unsigned grace_ms)
{
    snprintf(port_text, sizeof(port_text), "%d", stub.ports[0]);
    snprintf(grace_text, sizeof(grace_text), "%u", grace_ms);
}

/* Writes conf template tmpl with a shutdown grace of grace_ms and starts the gateway on it. */
static void start_gateway(const char *tmpl, unsigned grace_ms)
{
    set_conf_vars(grace_ms);
    conf_template_write(conf_path, sizeof(conf_path), tmpl, conf_vars, 2);
    cr_assert_eq(gateway_start(&gw, conf_path, NULL), 0, "gateway did not start: %s", gw.log_path);
}

/* Replaces the conf file the gateway was started with (it rereads that path on SIGHUP) by conf
 * template tmpl with a shutdown grace of grace_ms. */
static void rewrite_conf(const char *tmpl, unsigned grace_ms)
{
    set_conf_vars(grace_ms);
    conf_template_rewrite(conf_path, tmpl, conf_vars, 2);
}

/* Waits up to 3 s for want log lines holding every needle; returns how many there are. */
static int wait_log(const char *const *needles, int want)
{
    return proc_log_wait(&gw, needles, want, 3000);
}

/* The stub's record of kind event on connection conn (conn < 0: the request carrying trace);
 * waits up to 5 s. New reference or NULL. */
static json_t *wait_record(const char *event, json_int_t conn, const char *trace)
{
    uint64_t end = now_us() + 5000000u;

    do {
        json_t *all = stub_records(record);
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o)
        {
            const char *id = record_header(o, "X-Trace-Id");
            if (strcmp(json_string_value(json_object_get(o, "event")), event) == 0 &&
                (conn >= 0 ? json_integer_value(json_object_get(o, "conn_id")) == conn
                           : id != NULL && trace != NULL && strcmp(id, trace) == 0)) {
                json_incref(o);
                json_decref(all);
                return o;
            }
        }
        json_decref(all);
        usleep(5000);
    } while (now_us() < end);
    return NULL;
}

/* A request run on its own thread, so the test can signal the gateway meanwhile. */
struct bg_get {
    pthread_t thread;
    char target[256];
    char trace_hdr[128];
    struct http_resp resp;
    int rc;
    uint64_t t_start, t_end;
};

static void *bg_main(void *arg)
{
    struct bg_get *b = arg;
    const char *h[] = {b->trace_hdr, NULL};

    b->t_start = now_us();
    b->rc = http_do(gw.ports[0], "GET", b->target, h, NULL, 0, 20000, &b->resp);
    b->t_end = now_us();
    return NULL;
}

/* Starts GET target with X-Trace-Id trace and returns once the stub has received it. */
static void bg_start(struct bg_get *b, const char *target, const char *trace)
{
    json_t *rec;

    memset(b, 0, sizeof(*b));
    snprintf(b->target, sizeof(b->target), "%s", target);
    snprintf(b->trace_hdr, sizeof(b->trace_hdr), "X-Trace-Id: %s", trace);
    cr_assert_eq(pthread_create(&b->thread, NULL, bg_main, b), 0);
    rec = wait_record("request", -1, trace);
    cr_assert_not_null(rec, "%s never reached the stub", trace);
    json_decref(rec);
}

static void bg_join(struct bg_get *b)
{
    cr_assert_eq(pthread_join(b->thread, NULL), 0);
    cr_log_info("%s -> %ld after %.1f ms", b->target, b->resp.status,
                (double)(b->t_end - b->t_start) / 1000.0);
}

/* Sends SIGTERM and waits until the gateway says it is draining. */
static void sigterm_and_wait_drain(void)
{
    const char *drain[] = {"\"event\":\"drain.start\"", NULL};

    proc_signal(&gw, SIGTERM);
    cr_assert_geq(wait_log(drain, 1), 1, "no drain.start: %s", gw.log_path);
}

/* GET target on a new connection; returns the status. */
static long get_status(const char *target)
{
    struct http_resp r;
    long status;

    cr_assert_eq(http_do(gw.ports[0], "GET", target, NULL, NULL, 0, 5000, &r), 0, "%s: curl %d",
                 target, r.curl_rc);
    status = r.status;
    http_resp_free(&r);
    return status;
}

/* ---- SIGTERM ----------------------------------------------------------------------------- */

/* conf/lifecycle_slow.json: one worker, GET /slow/... to the stub with a 10 s budget. */

Test(lifecycle, sigterm_lets_the_request_in_flight_finish_then_exits_0)
{
    const char *stopped[] = {"\"event\":\"stopped\"", NULL};
    struct bg_get b;
    char conn[64];
    int rc;

    start_gateway("lifecycle_slow.json", 2000);
    bg_start(&b, "/slow/x?delay_ms=1000", "lc-drain");
    sigterm_and_wait_drain();
    bg_join(&b);
    cr_expect_eq(b.rc, 0, "curl %d", b.resp.curl_rc);
    cr_expect_eq(b.resp.status, 200, "%s", b.resp.body);
    cr_expect_geq(b.t_end - b.t_start, 1000000u);
    cr_expect_not_null(http_header(&b.resp, "Connection", conn, sizeof(conn)),
                       "a draining gateway closes the connection after the answer");
    http_resp_free(&b.resp);
    rc = proc_stop(&gw, 0, 5000);
    cr_expect_eq(rc, 0, "exit %d, log %s", rc, gw.log_path);
    cr_expect_eq(proc_log_count(&gw, stopped), 1);
}

Test(lifecycle, readyz_is_503_while_draining)
{
    const char *get = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    struct bg_get b;
    char *resp;
    size_t len;
    int fd;
    int rc;

    /* After SIGTERM the listen socket is closed: ask over a connection opened before. One
     * worker, so this connection and the request keeping the drain going share it. */
    start_gateway("lifecycle_slow.json", 5000);
    fd = tcp_connect(gw.ports[0]);
    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, get, strlen(get)), 0);
    resp = tcp_read_all(fd, 300, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "before: %.200s", resp);
    free(resp);
    bg_start(&b, "/slow/x?delay_ms=1000", "lc-ready");
    sigterm_and_wait_drain();
    cr_assert_eq(tcp_send(fd, get, strlen(get)), 0, "the kept-alive connection was dropped");
    resp = tcp_read_all(fd, 2000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 503", 12) == 0, "while draining: %.200s", resp);
    cr_expect_not_null(strstr(resp, "draining"), "%.300s", resp);
    free(resp);
    close(fd);
    bg_join(&b);
    cr_expect_eq(b.resp.status, 200);
    http_resp_free(&b.resp);
    rc = proc_stop(&gw, 0, 5000);
    cr_expect_eq(rc, 0, "exit %d, log %s", rc, gw.log_path);
}

Test(lifecycle, new_connections_are_refused_while_draining)
{
    struct bg_get b;
    int fd;
    int rc;

    start_gateway("lifecycle_slow.json", 5000);
    bg_start(&b, "/slow/x?delay_ms=1000", "lc-refuse");
    sigterm_and_wait_drain();
    fd = tcp_connect(gw.ports[0]);
    cr_expect_eq(fd, -1, "a draining gateway still accepts connections");
    if (fd >= 0) {
        close(fd);
    }
    bg_join(&b);
    cr_expect_eq(b.resp.status, 200);
    http_resp_free(&b.resp);
    rc = proc_stop(&gw, 0, 5000);
    cr_expect_eq(rc, 0, "exit %d, log %s", rc, gw.log_path);
}

Test(lifecycle, grace_over_cancels_the_rest_with_503)
{
    const char *cancel[] = {"\"event\":\"drain.cancel\"", NULL};
    const char *line[] = {"\"event\":\"request.done\"", "\"trace_id\":\"lc-grace\"",
                          "\"status\":503", NULL};
    struct bg_get b;
    json_t *req;
    json_t *cl;
    json_t *j;
    uint64_t t0;
    double ms;
    int rc;

    start_gateway("lifecycle_slow.json", 300);
    bg_start(&b, "/slow/x?delay_ms=5000", "lc-grace");
    t0 = now_us();
    proc_signal(&gw, SIGTERM);
    bg_join(&b);
    ms = (double)(b.t_end - t0) / 1000.0;
    cr_log_info("grace 300 ms: 503 %.1f ms after SIGTERM", ms);
    cr_expect_eq(b.resp.status, 503, "%s", b.resp.body);
    cr_expect_geq(ms, 300.0, "cancelled before the grace was over");
    cr_expect_lt(ms, 1500.0, "the grace was not enforced");
    j = json_loadb(b.resp.body, b.resp.body_len, 0, NULL);
    cr_expect_not_null(j, "not JSON: %s", b.resp.body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), "lc-grace");
    json_decref(j);
    http_resp_free(&b.resp);
    rc = proc_stop(&gw, 0, 5000);
    cr_expect_eq(rc, 0, "exit %d, log %s", rc, gw.log_path);
    cr_expect_eq(proc_log_count(&gw, cancel), 1, "no drain.cancel: %s", gw.log_path);
    cr_expect_eq(proc_log_count(&gw, line), 1, "no 503 access line: %s", gw.log_path);
    /* The cancelled call's upstream connection was closed while the stub was still waiting. */
    req = wait_record("request", -1, "lc-grace");
    cr_assert_not_null(req);
    cl = wait_record("close", json_integer_value(json_object_get(req, "conn_id")), NULL);
    cr_assert_not_null(cl, "the upstream connection of the cancelled call stayed open");
    cr_expect_str_eq(json_string_value(json_object_get(cl, "while")), "waiting");
    json_decref(cl);
    json_decref(req);
}

/* ---- SIGHUP ------------------------------------------------------------------------------ */

/* conf/lifecycle_old.json: two workers, GET /old/... to the stub; lifecycle_old_new.json adds
 * GET /new/... */

/* n GETs on new connections, so that both workers answer; counts those with status want. */
static int count_status(const char *target, int n, long want)
{
    int hits = 0;

    for (int i = 0; i < n; i++) {
        hits += get_status(target) == want;
    }
    return hits;
}

Test(lifecycle, sighup_with_a_broken_conf_keeps_the_old_routes)
{
    const char *failed[] = {"\"event\":\"conf.reload_failed\"", NULL};
    /* Cut JSON, a route naming an unknown upstream, an unknown key: each is refused whole. */
    const char *broken[] = {"lifecycle_broken_cut.json", "lifecycle_broken_unknown_upstream.json",
                            "lifecycle_broken_unknown_key.json"};

    start_gateway("lifecycle_old.json", 5000);
    for (int i = 0; i < 3; i++) {
        rewrite_conf(broken[i], 5000);
        proc_signal(&gw, SIGHUP);
        cr_assert_eq(wait_log(failed, i + 1), i + 1, "no conf.reload_failed for #%d: %s", i,
                     gw.log_path);
        cr_expect_eq(count_status("/old/x", 6, 200), 6, "old route lost after broken conf #%d", i);
        cr_expect_eq(count_status("/new/x", 2, 404), 2);
    }
}

Test(lifecycle, sighup_with_a_good_conf_serves_the_new_route)
{
    const char *reloaded[] = {"\"event\":\"conf.reloaded\"", NULL};
    uint64_t end;

    start_gateway("lifecycle_old.json", 5000);
    cr_expect_eq(get_status("/new/x"), 404);
    rewrite_conf("lifecycle_old_new.json", 5000);
    proc_signal(&gw, SIGHUP);
    cr_assert_eq(wait_log(reloaded, 1), 1, "no conf.reloaded: %s", gw.log_path);
    /* Workers pick the new conf up on their next loop pass: allow a moment. */
    end = now_us() + 1000000u;
    while (get_status("/new/x") != 200 && now_us() < end) {
        usleep(10000);
    }
    cr_expect_eq(count_status("/new/x", 8, 200), 8, "new route not served by every worker");
    cr_expect_eq(count_status("/old/x", 4, 200), 4);
}

Test(lifecycle, request_in_flight_across_a_reload_finishes_on_its_old_route)
{
    const char *reloaded[] = {"\"event\":\"conf.reloaded\"", NULL};
    const char *old_line[] = {"\"event\":\"request.done\"", "\"trace_id\":\"lc-flight-old\"",
                              "\"route\":\"flight-a\"", "\"status\":200", NULL};
    const char *new_line[] = {"\"event\":\"request.done\"", "\"trace_id\":\"lc-flight-new\"",
                              "\"route\":\"flight-b\"", "\"status\":504", NULL};
    const char *h[] = {"X-Trace-Id: lc-flight-new", NULL};
    struct bg_get b;
    struct http_resp r;

    /* Route flight-a, GET /flight/... with a 3 s budget, becomes flight-b: the same path, a new
     * name and a 300 ms budget the old request would not fit in. */
    start_gateway("lifecycle_flight_a.json", 5000);
    bg_start(&b, "/flight/x?delay_ms=1000", "lc-flight-old");
    rewrite_conf("lifecycle_flight_b.json", 5000);
    proc_signal(&gw, SIGHUP);
    cr_assert_eq(wait_log(reloaded, 1), 1, "no conf.reloaded: %s", gw.log_path);
    usleep(50000);
    cr_assert_eq(http_do(gw.ports[0], "GET", "/flight/x?delay_ms=1000", h, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, 504, "a new request must get the new 300 ms budget: %s", r.body);
    http_resp_free(&r);
    bg_join(&b);
    cr_expect_eq(b.resp.status, 200, "the request in flight lost its route: %s", b.resp.body);
    http_resp_free(&b.resp);
    cr_expect_eq(wait_log(old_line, 1), 1, "log %s", gw.log_path);
    cr_expect_eq(wait_log(new_line, 1), 1, "log %s", gw.log_path);
}

Test(lifecycle, sighup_changes_the_shutdown_grace)
{
    const char *reloaded[] = {"\"event\":\"conf.reloaded\"", NULL};
    struct bg_get b;
    uint64_t t0;
    double ms;
    int rc;

    /* Only listen and workers wait for a restart: a new grace applies to the next drain. */
    start_gateway("lifecycle_slow.json", 10000);
    rewrite_conf("lifecycle_slow.json", 300);
    proc_signal(&gw, SIGHUP);
    cr_assert_eq(wait_log(reloaded, 1), 1, "no conf.reloaded: %s", gw.log_path);
    bg_start(&b, "/slow/x?delay_ms=5000", "lc-grace-reload");
    t0 = now_us();
    proc_signal(&gw, SIGTERM);
    bg_join(&b);
    ms = (double)(b.t_end - t0) / 1000.0;
    cr_expect_eq(b.resp.status, 503, "%s", b.resp.body);
    cr_expect_geq(ms, 300.0);
    cr_expect_lt(ms, 1500.0, "503 %.1f ms after SIGTERM: the reloaded grace was ignored", ms);
    http_resp_free(&b.resp);
    rc = proc_stop(&gw, 0, 5000);
    cr_expect_eq(rc, 0, "exit %d, log %s", rc, gw.log_path);
}
