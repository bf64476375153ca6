/* Parser hardening over raw TCP: every refused message closes its connection so that nothing
 * after it is read as a request; the method is a token; a missing Host is the gateway's own
 * JSON 400; a chunked body far over its cap still gets its 413 and its log line; a HEAD answer
 * carries the upstream's Content-Length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/raw_http.h"
#include "tests/support/stub_ctl.h"

#define SMUGGLED     "GET /raw/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
#define MSG(literal) literal, sizeof(literal) - 1

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "hardening.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(hardening, .init = setup, .fini = teardown, .timeout = 90);

/* How many request records the stub has, after a pause long enough for a wrongly forwarded
 * request to arrive. */
static size_t upstream_requests(void)
{
    json_t *all;
    size_t i, n = 0;
    json_t *o;

    usleep(200000);
    all = stub_records(fx.record);
    json_array_foreach(all, i, o)
    {
        n += strcmp(json_string_value(json_object_get(o, "event")), "request") == 0;
    }
    json_decref(all);
    return n;
}

/* Occurrences of needle in hay. */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* One gateway-made JSON 400 with the trace id of its X-Trace-Id header, one header block, the
 * connection closed, and nothing upstream: not the refused request, not the one after it. */
static void expect_json_400_and_closed(const char *msg, size_t len, const char *what)
{
    struct raw_answer a;
    char hdr[256] = "";
    const char *h;
    json_t *j;

    raw_exchange(fx.gw.ports[0], msg, len, 1, true, &a);
    cr_assert_geq(a.n, 1, "%s: no complete answer: %s", what, a.buf);
    cr_expect_eq(a.status[0], 400, "%s: got %.60s", what, a.buf);
    cr_expect_eq(count(a.buf, "HTTP/1."), 1, "%s: one status line: %s", what, a.buf);
    cr_expect_eq(count(a.buf, "\r\n\r\n"), 1, "%s: one header block: %s", what, a.buf);
    cr_expect(a.closed, "%s: connection left open after a refused message", what);
    j = json_loadb(a.buf + a.body_off[0], a.body_len[0], 0, NULL);
    cr_assert_not_null(j, "%s: not JSON: %s", what, a.buf);
    h = strcasestr(a.buf, "\r\nX-Trace-Id: ");
    cr_assert_not_null(h, "%s: no trace header: %s", what, a.buf);
    snprintf(hdr, sizeof(hdr), "%.*s", (int)strcspn(h + 14, "\r"), h + 14);
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), hdr, "%s", what);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "bad request", "%s", what);
    json_decref(j);
    cr_expect_eq(upstream_requests(), 0, "%s: a request reached the upstream", what);
    raw_answer_free(&a);
}

Test(hardening, refused_get_without_body_closes_and_drops_what_follows)
{
    /* No body follows: before, the connection stayed open and SMUGGLED was served. */
    expect_json_400_and_closed(MSG("GET /raw/a HTTP/1.1\r\nHost: gw\r\nX-A: a\rb\r\n\r\n" SMUGGLED),
                               "bare CR");
}

Test(hardening, method_that_is_not_a_token_is_400_and_closes)
{
    expect_json_400_and_closed(MSG("G(T /raw/a HTTP/1.1\r\nHost: gw\r\n\r\n" SMUGGLED), "G(T");
}

Test(hardening, method_with_a_control_byte_is_400_and_closes)
{
    expect_json_400_and_closed(MSG("GE\x01T /raw/a HTTP/1.1\r\nHost: gw\r\n\r\n" SMUGGLED),
                               "control byte");
}

Test(hardening, space_in_the_target_is_400_and_closes)
{
    expect_json_400_and_closed(MSG("GET /raw/a b HTTP/1.1\r\nHost: gw\r\n\r\n" SMUGGLED), "space");
}

Test(hardening, missing_host_is_the_gateways_json_400_with_trace_id)
{
    const char *line[] = {"\"event\":\"request.done\"", "\"status\":400", "missing host", NULL};

    expect_json_400_and_closed(MSG("GET /raw/a HTTP/1.1\r\nX-A: 1\r\n\r\n" SMUGGLED), "no Host");
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* The cap is 1 KiB; 12 MiB follow in chunks, three times what was once read before the
 * connection was cut without an answer. */
Test(hardening, chunked_body_far_over_the_cap_gets_413_and_a_log_line)
{
    const char *line[] = {"\"event\":\"request.done\"", "\"status\":413",
                          "\"route\":\"POST /small\"", NULL};
    const char head[] = "POST /small HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t chunk = 65536;
    char *buf = malloc(chunk + 16);
    struct raw_answer a = {0};
    int fd = tcp_connect(fx.gw.ports[0]);
    int n = snprintf(buf, 16, "%zx\r\n", chunk);

    cr_assert_not_null(buf);
    cr_assert_geq(fd, 0);
    memset(buf + n, 'x', chunk);
    buf[n + chunk] = '\r';
    buf[n + chunk + 1] = '\n';
    cr_assert_eq(tcp_send(fd, head, sizeof(head) - 1), 0);
    for (int i = 0; i < 192; i++) {
        cr_assert_eq(tcp_send(fd, buf, (size_t)n + chunk + 2), 0, "cut after %d chunks", i);
    }
    cr_assert_eq(tcp_send(fd, "0\r\n\r\n", 5), 0);
    raw_read_answer(fd, 1, false, &a);
    close(fd);
    cr_assert_eq(a.n, 1, "no answer: %s", a.buf != NULL ? a.buf : "");
    cr_expect_eq(a.status[0], 413);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 3000), 1, "log %s", fx.gw.log_path);
    cr_expect_eq(upstream_requests(), 0);
    raw_answer_free(&a);
    free(buf);
}

Test(hardening, head_answer_carries_the_upstreams_content_length)
{
    const char req[] = "HEAD /raw/doc?body_bytes=12345 HTTP/1.1\r\nHost: gw\r\n"
                       "Connection: close\r\n\r\n";
    int fd = tcp_connect(fx.gw.ports[0]);
    size_t len = 0;
    char *got;
    const char *cl;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, req, sizeof(req) - 1), 0);
    got = tcp_read_all(fd, 5000, &len); /* the gateway closes after the answer */
    close(fd);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200", 12), 0, "%s", got);
    cr_expect_eq(count(got, "Content-Length"), 1, "one length header: %s", got);
    cl = strcasestr(got, "\r\nContent-Length: ");
    cr_assert_not_null(cl, "%s", got);
    cr_expect_eq(strncmp(cl + 18, "12345\r\n", 7), 0, "%s", got);
    cr_expect_eq(strlen(strstr(got, "\r\n\r\n")), 4, "no body after a HEAD answer: %s", got);
    free(got);
}
