/* Proxying through the real binary against the real stub upstream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

static struct fixture fx;

/* limits.max_body_bytes in conf/proxy.json */
#define LIMIT 65536

static void setup(void)
{
    const char *specs[] = {"0:test", "0:questionnaire"};

    fixture_stub_start(&fx, specs, 2, true);
    fixture_gateway_start(&fx, "proxy.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 60);

static json_t *body_json(const struct http_resp *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

    cr_assert_not_null(j, "not JSON: %s", r->body);
    return j;
}

/* The last request record the stub wrote. */
static json_t *last_request(void)
{
    return stub_last_request(fx.record, NULL);
}

Test(proxy, get_keeps_raw_path_and_query)
{
    struct http_resp r;
    json_t *j;

    cr_assert_eq(
        http_do(fx.gw.ports[0], "GET", "/raw/a%20b/%2F/c?x=1&y=%2Fz&e=", NULL, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    j = body_json(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "target")),
                     "/raw/a%20b/%2F/c?x=1&y=%2Fz&e=");
    cr_expect_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    json_decref(j);
    http_resp_free(&r);
}

Test(proxy, strip_prefix_forwards_the_rest)
{
    struct http_resp r;
    json_t *j;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/api/patients/p%C3%BC?q=1", NULL, NULL, 0, 0, &r),
                 0);
    j = body_json(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "target")), "/patients/p%C3%BC?q=1");
    json_decref(j);
    http_resp_free(&r);
}

Test(proxy, post_two_mib_byte_exact)
{
    size_t n = 2u << 20;
    char *body = malloc(n);
    struct http_resp r;
    const char *h[] = {"Content-Type: application/octet-stream", NULL};
    json_t *rec;

    for (size_t i = 0; i < n; i++) {
        body[i] = (char)((i * 7919u + (i >> 9)) & 0xff);
    }
    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/big/_echo/body", h, body, n, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(r.body_len, n);
    cr_expect(memcmp(r.body, body, n) == 0, "body changed on the way");
    rec = last_request();
    cr_expect_eq(json_integer_value(json_object_get(rec, "body_len")), (json_int_t)n);
    cr_expect_null(record_header(rec, "Expect"), "Expect must not reach the upstream");
    json_decref(rec);
    http_resp_free(&r);
    free(body);
}

Test(proxy, put_delete_and_patch_pass_method_and_body)
{
    const char *methods[] = {"PUT", "PATCH", "DELETE"};

    for (size_t i = 0; i < 3; i++) {
        struct http_resp r;
        json_t *j;
        cr_assert_eq(http_do(fx.gw.ports[0], methods[i], "/raw/x", NULL, "{\"a\":1}", 7, 0, &r), 0);
        j = body_json(&r);
        cr_expect_str_eq(json_string_value(json_object_get(j, "method")), methods[i]);
        cr_expect_eq(json_integer_value(json_object_get(j, "body_len")), 7);
        json_decref(j);
        http_resp_free(&r);
    }
}

Test(proxy, request_hop_by_hop_headers_are_stripped)
{
    const char *h[] = {"Connection: keep-alive, X-Drop-Me",
                       "X-Drop-Me: 1",
                       "Keep-Alive: timeout=5",
                       "TE: trailers",
                       "Proxy-Authorization: Basic eA==",
                       "Upgrade: websocket",
                       "X-Keep: yes",
                       "X-Forwarded-For: 10.1.2.3",
                       NULL};
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    rec = last_request();
    cr_assert_not_null(rec);
    cr_expect_null(record_header(rec, "X-Drop-Me"));
    cr_expect_null(record_header(rec, "Keep-Alive"));
    cr_expect_null(record_header(rec, "TE"));
    cr_expect_null(record_header(rec, "Proxy-Authorization"));
    cr_expect_null(record_header(rec, "Upgrade"));
    cr_expect_str_eq(record_header(rec, "X-Keep"), "yes");
    cr_expect_str_eq(record_header(rec, "X-Forwarded-For"), "10.1.2.3, 127.0.0.1");
    cr_expect_str_eq(record_header(rec, "X-Forwarded-Proto"), "http");
    cr_expect_not_null(record_header(rec, "X-Forwarded-Host"));
    json_decref(rec);
    http_resp_free(&r);
}

Test(proxy, response_hop_by_hop_headers_are_stripped)
{
    struct http_resp r;
    char buf[256];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET",
                         "/raw/r?header=Connection:x-secret&header=X-Secret:1"
                         "&header=Keep-Alive:timeout%3D1&header=X-Ok:1",
                         NULL, NULL, 0, 0, &r),
                 0);
    cr_assert_eq(r.status, 200);
    cr_expect_null(http_header(&r, "X-Secret", buf, sizeof(buf)));
    cr_expect_null(http_header(&r, "Keep-Alive", buf, sizeof(buf)));
    cr_expect_not_null(http_header(&r, "X-Ok", buf, sizeof(buf)));
    http_resp_free(&r);
}

Test(proxy, upstream_status_and_body_pass_through)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/s?status=418&body=%7B%22t%22%3A1%7D", NULL,
                         NULL, 0, 0, &r),
                 0);
    cr_expect_eq(r.status, 418);
    cr_expect_str_eq(r.body, "{\"t\":1}");
    http_resp_free(&r);
}

static void expect_json_error(const struct http_resp *r, long status)
{
    json_t *j;
    char id[256];

    cr_expect_eq(r->status, status, "got %ld: %s", r->status, r->body);
    j = body_json(r);
    cr_expect(json_is_string(json_object_get(j, "error")), "%s", r->body);
    cr_expect(json_is_string(json_object_get(j, "trace_id")), "%s", r->body);
    cr_expect_not_null(http_header(r, "X-Trace-Id", id, sizeof(id)));
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), id);
    json_decref(j);
}

Test(proxy, unknown_path_is_404_json)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/nowhere", NULL, NULL, 0, 0, &r), 0);
    expect_json_error(&r, 404);
    http_resp_free(&r);
}

Test(proxy, wrong_method_is_405_with_allow)
{
    struct http_resp r;
    char allow[128];

    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/only-get", NULL, "x", 1, 0, &r), 0);
    expect_json_error(&r, 405);
    cr_assert_not_null(http_header(&r, "Allow", allow, sizeof(allow)));
    cr_expect_str_eq(allow, "DELETE, GET, HEAD");
    http_resp_free(&r);
}

Test(proxy, body_at_limit_passes_and_one_more_byte_is_413)
{
    char *body = calloc(1, LIMIT + 1);
    struct http_resp r;

    memset(body, 'x', LIMIT + 1);
    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/api/_echo/body", NULL, body, LIMIT, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, LIMIT);
    http_resp_free(&r);
    http_do(fx.gw.ports[0], "POST", "/api/_echo/body", NULL, body, LIMIT + 1, 0, &r);
    expect_json_error(&r, 413);
    http_resp_free(&r);
    free(body);
}

Test(proxy, chunked_body_over_limit_is_413)
{
    int fd = tcp_connect(fx.gw.ports[0]);
    char chunk[8192];
    char *resp;
    size_t len;

    cr_assert_geq(fd, 0);
    const char *head = "POST /api/_echo/body HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";

    cr_assert_eq(tcp_send(fd, head, strlen(head)), 0);
    memset(chunk, 'y', sizeof(chunk));
    for (int i = 0; i < 10; i++) {
        char size[16];
        int n = snprintf(size, sizeof(size), "%zx\r\n", sizeof(chunk));
        if (tcp_send(fd, size, (size_t)n) != 0 || tcp_send(fd, chunk, sizeof(chunk)) != 0 ||
            tcp_send(fd, "\r\n", 2) != 0) {
            break;
        }
    }
    tcp_send(fd, "0\r\n\r\n", 5);
    resp = tcp_read_all(fd, 3000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 413", 12) == 0, "got: %.200s", resp);
    free(resp);
    close(fd);
}

Test(proxy, connect_refused_is_502)
{
    struct http_resp r;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/down", NULL, NULL, 0, 0, &r), 0);
    expect_json_error(&r, 502);
    http_resp_free(&r);
}

Test(proxy, upstream_reset_and_early_close_are_502)
{
    const char *targets[] = {"/raw/x?reset=1", "/raw/x?close=1", "/raw/x?close_after_headers=1"};

    for (size_t i = 0; i < 3; i++) {
        struct http_resp r;
        cr_assert_eq(http_do(fx.gw.ports[0], "GET", targets[i], NULL, NULL, 0, 0, &r), 0);
        expect_json_error(&r, 502);
        http_resp_free(&r);
    }
}

Test(proxy, submit_reaches_questionnaire_service)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *sub = "{\"patient_id\":\"p1\",\"answers\":[1,2]}";
    struct http_resp r;
    json_t *j;

    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    j = body_json(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "message")), "success");
    cr_expect(json_is_string(json_object_get(j, "submission_id")));
    json_decref(j);
    http_resp_free(&r);
}

/* NOLINTNEXTLINE(readability-non-const-parameter): libcurl's write callback type */
static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

Test(proxy, keep_alive_reuses_upstream_connections)
{
    CURL *c = curl_easy_init();
    char url[128];
    long opened = 0;
    json_t *all;
    size_t i;
    json_t *o;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/raw/ka", fx.gw.ports[0]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    for (int k = 0; k < 1000; k++) {
        long status = 0;
        cr_assert_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        cr_assert_eq(status, 200);
    }
    curl_easy_cleanup(c);
    all = stub_records(fx.record);
    json_array_foreach(all, i, o)
    {
        opened += strcmp(json_string_value(json_object_get(o, "event")), "open") == 0;
    }
    json_decref(all);
    /* One client connection lands on one worker; 2 workers x 1 in flight at most. */
    cr_expect_leq(opened, 2, "%ld upstream connections for 1000 sequential requests", opened);
}

Test(proxy, access_log_line_per_request_without_body)
{
    struct http_resp r;
    const char *secret = "{\"diagnosis\":\"very-secret-phi\"}";
    const char *line[] = {"\"event\":\"request.done\"",
                          "\"path\":\"/raw/log\"",
                          "\"status\":200",
                          "\"upstream_status\":200",
                          "\"duration_ms\":",
                          "\"bytes_in\":31",
                          "\"trace_id\":",
                          NULL};
    const char *phi[] = {"very-secret-phi", NULL};

    cr_assert_eq(
        http_do(fx.gw.ports[0], "POST", "/raw/log?name=x", NULL, secret, strlen(secret), 0, &r), 0);
    http_resp_free(&r);
    usleep(100000);
    cr_expect_eq(proc_log_count(&fx.gw, line), 1, "log: %s", fx.gw.log_path);
    cr_expect_eq(proc_log_count(&fx.gw, phi), 0, "a body reached the log");
}

static int count_requests_to(const char *target)
{
    json_t *all = stub_records(fx.record);
    int n = 0;
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "target"));
        n += strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 && t != NULL &&
             strcmp(t, target) == 0;
    }
    json_decref(all);
    return n;
}

/* A kept-alive upstream connection that dies after taking a POST: curl would resend it on a
 * new connection, and the service would store the submission twice. It must not. */
Test(proxy, post_is_never_resent_after_a_lost_connection)
{
    int fd;
    const char *warm = "POST /raw/warm HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    const char *lost = "POST /raw/sub?close=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    char *resp;
    size_t len;

    /* One client connection: both requests on one worker, so the second reuses the first's
     * upstream connection. */
    fd = tcp_connect(fx.gw.ports[0]);
    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, warm, strlen(warm)), 0);
    free(tcp_read_all(fd, 300, &len));
    cr_assert_eq(tcp_send(fd, lost, strlen(lost)), 0);
    resp = tcp_read_all(fd, 1000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 502", 12) == 0, "got %.100s", resp);
    free(resp);
    close(fd);
    cr_expect_eq(count_requests_to("/raw/sub?close=1"), 1, "the POST reached the upstream twice");
}

Test(proxy, put_is_resent_once_after_a_lost_connection)
{
    int fd = tcp_connect(fx.gw.ports[0]);
    const char *warm = "PUT /raw/warm HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    const char *lost = "PUT /raw/put?close=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    size_t len;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, warm, strlen(warm)), 0);
    free(tcp_read_all(fd, 300, &len));
    cr_assert_eq(tcp_send(fd, lost, strlen(lost)), 0);
    free(tcp_read_all(fd, 1000, &len));
    close(fd);
    /* Idempotent: a resend on a fresh connection is allowed, as NGINX does (2), and the route's
     * retry of a call closed before any answer byte makes one more attempt (3). */
    cr_expect_eq(count_requests_to("/raw/put?close=1"), 3);
}

Test(proxy, too_many_headers_is_431_json_and_nothing_is_forwarded)
{
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET /raw/many HTTP/1.1\r\nHost: x\r\n");
    int fd = tcp_connect(fx.gw.ports[0]);
    char *resp;
    size_t len;

    for (int i = 0; i < 101; i++) { /* with Host: 102 headers, two over the cap */
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: 1\r\n", i);
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, req, n), 0);
    resp = tcp_read_all(fd, 1000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 431", 12) == 0, "%.100s", resp);
    cr_expect(strstr(resp, "\"trace_id\"") != NULL, "%s", resp);
    free(resp);
    close(fd);
    cr_expect_eq(count_requests_to("/raw/many"), 0);
}

Test(proxy, a_hundred_headers_pass)
{
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET /raw/cap HTTP/1.1\r\nHost: x\r\n");
    int fd = tcp_connect(fx.gw.ports[0]);
    char *resp;
    size_t len;

    /* A hundred fields, the cap (Envoy's default too), fit the default 8 KiB connection buffer
     * with the answer's head built there as well. */
    for (int i = 0; i < 98; i++) {
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: 1\r\n", i);
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "Connection: close\r\n\r\n");
    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, req, n), 0);
    resp = tcp_read_all(fd, 1000, &len);
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.100s", resp);
    free(resp);
    close(fd);
}
