/* Trace context through the real gateway: what the stub upstream receives (trace header,
 * traceparent, tracestate), what the client gets back, and what the log says, for ids taken
 * from the client, ids the gateway makes, and hostile values that must be replaced. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

/* limits.max_body_bytes in conf/trace.json */
#define BODY_LIMIT 1024

#define TP_TRACE      "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_PARENT     "00f067aa0ba902b7"
#define TP_TRACE_UUID "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test", "0:questionnaire"};

    fixture_stub_start(&fx, specs, 2, true);
    fixture_gateway_start(&fx, "trace.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(trace, .init = setup, .fini = teardown, .timeout = 90);

/* ---- helpers -----------------------------------------------------------------------------------
 */

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* A lower-case version 4 UUID with the RFC 9562 variant. */
static bool is_uuid_v4(const char *s)
{
    if (s == NULL || strlen(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' ||
        s[23] != '-') {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        if (i != 8 && i != 13 && i != 18 && i != 23 && !is_lower_hex(s + i, 1)) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void undash(const char *uuid, char out[33])
{
    size_t k = 0;

    for (size_t i = 0; uuid[i] != '\0' && k < 32; i++) {
        if (uuid[i] != '-') {
            out[k++] = uuid[i];
        }
    }
    out[k] = '\0';
}

/* A version 00 traceparent split into its fields. */
struct tp {
    char trace[33];
    char span[17];
    char flags[3];
};

static void tp_split(const char *v, struct tp *tp)
{
    cr_assert_not_null(v, "no traceparent");
    cr_assert_eq(strlen(v), 55, "traceparent \"%s\"", v);
    cr_assert(strncmp(v, "00-", 3) == 0 && v[35] == '-' && v[52] == '-', "traceparent \"%s\"", v);
    cr_assert(is_lower_hex(v + 3, 32) && is_lower_hex(v + 36, 16) && is_lower_hex(v + 53, 2),
              "traceparent \"%s\"", v);
    memcpy(tp->trace, v + 3, 32);
    tp->trace[32] = '\0';
    memcpy(tp->span, v + 36, 16);
    tp->span[16] = '\0';
    memcpy(tp->flags, v + 53, 2);
    tp->flags[2] = '\0';
}

/* Request records of the stub (caller decrefs). */
static json_t *upstream_requests(void)
{
    json_t *all = stub_records(fx.record);
    json_t *reqs = json_array();
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "event")), "request") == 0) {
            json_array_append(reqs, o);
        }
    }
    json_decref(all);
    return reqs;
}

/* The only request the upstream saw (caller decrefs). */
static json_t *only_upstream_request(void)
{
    json_t *reqs = upstream_requests();
    json_t *one;

    cr_assert_eq(json_array_size(reqs), 1, "upstream saw %zu requests", json_array_size(reqs));
    one = json_incref(json_array_get(reqs, 0));
    json_decref(reqs);
    return one;
}

static size_t rec_header_count(json_t *rec, const char *name)
{
    size_t i;
    size_t n = 0;
    json_t *pair;

    json_array_foreach(json_object_get(rec, "headers"), i, pair)
    {
        n += strcasecmp(json_string_value(json_array_get(pair, 0)), name) == 0;
    }
    return n;
}

/* Value of the header name in a stub record; it must appear exactly once. */
static const char *rec_header(json_t *rec, const char *name)
{
    cr_assert_eq(rec_header_count(rec, name), 1, "upstream got %s %zu times", name,
                 rec_header_count(rec, name));
    return record_header(rec, name);
}

/* Every JSON line of the gateway's log (caller decrefs). */
static json_t *log_lines(void)
{
    char *log = proc_log(&fx.gw);
    json_t *lines = json_array();
    char *save = NULL;

    cr_assert_not_null(log);
    for (char *l = strtok_r(log, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(l, 0, NULL);
        if (o != NULL) {
            json_array_append_new(lines, o);
        }
    }
    free(log);
    return lines;
}

/* The lines of event that name trace_id: how many, and the last of them (borrowed). */
static size_t find_lines(json_t *lines, const char *event, const char *trace_id, json_t **last)
{
    size_t n = 0;
    size_t i;
    json_t *o;

    json_array_foreach(lines, i, o)
    {
        const char *ev = json_string_value(json_object_get(o, "event"));
        const char *id = json_string_value(json_object_get(o, "trace_id"));
        if (ev != NULL && id != NULL && strcmp(ev, event) == 0 && strcmp(id, trace_id) == 0) {
            *last = o;
            n++;
        }
    }
    return n;
}

/* The one log line of event for trace_id, borrowed from lines; waits for access log lines,
 * which may follow the answer by a moment. */
static json_t *log_line(json_t **lines, const char *event, const char *trace_id)
{
    for (int tries = 0; tries < 50; tries++) {
        json_t *found = NULL;
        size_t n = find_lines(*lines, event, trace_id, &found);

        if (n > 0) {
            cr_assert_eq(n, 1, "%zu %s lines for %s, log %s", n, event, trace_id, fx.gw.log_path);
            return found;
        }
        usleep(20000);
        json_decref(*lines);
        *lines = log_lines();
    }
    cr_assert_fail("no %s line for trace_id %s, log %s", event, trace_id, fx.gw.log_path);
    return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Checks the chain of ids for one proxied request: the upstream got trace_id under X-Trace-Id
 * and a traceparent of the same trace with a span of its own, whose parent is the gateway's
 * span (the one the client got back); both log lines say so. */
static void expect_one_trace(const struct http_resp *r, json_t *rec, const char *trace_id,
                             const char *w3c, const char *flags)
{
    char id[256];
    char tpbuf[128];
    struct tp up;
    struct tp back;
    json_t *lines = log_lines();
    json_t *done;

    cr_assert_not_null(http_header(r, "X-Trace-Id", id, sizeof(id)), "no X-Trace-Id back");
    cr_expect_str_eq(id, trace_id);
    cr_expect_str_eq(rec_header(rec, "X-Trace-Id"), trace_id);
    tp_split(rec_header(rec, "traceparent"), &up);
    cr_assert_not_null(http_header(r, "traceparent", tpbuf, sizeof(tpbuf)));
    tp_split(tpbuf, &back);
    cr_expect_str_eq(up.trace, w3c);
    cr_expect_str_eq(back.trace, w3c);
    cr_expect_str_eq(up.flags, flags);
    cr_expect_str_eq(back.flags, flags);
    cr_expect_str_neq(up.span, back.span, "the upstream call needs a span of its own");
    cr_expect_str_neq(up.span, TP_PARENT);
    cr_expect_str_neq(back.span, TP_PARENT);

    /* A proxy call that succeeds at once has no upstream.done line of its own: request.done
     * names the call's span beside the gateway's. */
    done = log_line(&lines, "request.done", trace_id);
    cr_expect_str_eq(str_of(done, "span_id"), back.span);
    cr_expect_str_eq(str_of(done, "upstream_span_id"), up.span);
    cr_expect_eq(find_lines(lines, "upstream.done", trace_id, &done), 0);
    json_decref(lines);
}

/* ---- ids from the client and new ones
 * ------------------------------------------------------------ */

Test(trace, plain_id_reaches_the_upstream_the_client_and_the_log)
{
    const char *h[] = {"X-Trace-Id: demo-trace-1", NULL};
    struct http_resp r;
    json_t *rec;
    struct tp up;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/a", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    rec = only_upstream_request();
    tp_split(rec_header(rec, "traceparent"), &up);
    /* Not a UUID: the W3C trace-id is new and random, and says so (sampled + random). */
    expect_one_trace(&r, rec, "demo-trace-1", up.trace, "03");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, submit_passes_the_id_to_the_questionnaire_service)
{
    const char *h[] = {"Content-Type: application/json", "X-Trace-Id: " TP_TRACE_UUID, NULL};
    const char *sub = "{\"patient_id\":\"p1\",\"answers\":[1,2]}";
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/submit", h, sub, strlen(sub), 0, &r), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    rec = only_upstream_request();
    cr_expect_str_eq(json_string_value(json_object_get(rec, "target")),
                     "/questionnaires/submissions");
    /* A UUID is the W3C trace-id itself; its randomness is unknown: sampled only. */
    expect_one_trace(&r, rec, TP_TRACE_UUID, TP_TRACE, "01");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, no_header_gets_a_new_uuid_everywhere)
{
    struct http_resp r;
    char id[64];
    char hex[33];
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/new", NULL, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    cr_assert(is_uuid_v4(id), "\"%s\" is not a UUID v4", id);
    undash(id, hex);
    rec = only_upstream_request();
    expect_one_trace(&r, rec, id, hex, "03");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, accepted_name_is_forwarded_under_the_main_name_only)
{
    const char *h[] = {"trace-id: acc-1", NULL};
    struct http_resp r;
    json_t *rec;
    char id[64];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/acc", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    cr_expect_str_eq(id, "acc-1");
    rec = only_upstream_request();
    cr_expect_str_eq(rec_header(rec, "X-Trace-Id"), "acc-1");
    cr_expect_eq(rec_header_count(rec, "trace-id"), 0, "the accepted name must not pass");
    json_decref(rec);
    http_resp_free(&r);
}

/* ---- W3C trace context
 * ------------------------------------------------------------------------------ */

Test(trace, traceparent_and_normalized_tracestate_are_passed_on)
{
    const char *h[] = {"traceparent: 00-" TP_TRACE "-" TP_PARENT "-01",
                       "tracestate: congo=t61rcWkgMzE , ,rojo=00f067aa0ba902b7", NULL};
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/w3c", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    rec = only_upstream_request();
    expect_one_trace(&r, rec, TP_TRACE, TP_TRACE, "01");
    cr_expect_str_eq(rec_header(rec, "tracestate"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, repeated_tracestate_lines_arrive_as_one)
{
    const char *h[] = {"traceparent: 00-" TP_TRACE "-" TP_PARENT "-01", "tracestate: a=1",
                       "tracestate: b=2", NULL};
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/ts", h, NULL, 0, 0, &r), 0);
    rec = only_upstream_request();
    cr_expect_str_eq(rec_header(rec, "tracestate"), "a=1,b=2");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, sampled_flag_00_and_01_are_passed_on)
{
    const char *flags[] = {"00", "01"};

    for (size_t i = 0; i < 2; i++) {
        char tp[80];
        const char *h[] = {tp, NULL};
        struct http_resp r;
        json_t *reqs;
        struct tp up;

        snprintf(tp, sizeof(tp), "traceparent: 00-" TP_TRACE "-" TP_PARENT "-%s", flags[i]);
        cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/flags", h, NULL, 0, 0, &r), 0);
        cr_assert_eq(r.status, 200);
        reqs = upstream_requests();
        cr_assert_eq(json_array_size(reqs), i + 1);
        tp_split(rec_header(json_array_get(reqs, i), "traceparent"), &up);
        cr_expect_str_eq(up.flags, flags[i]);
        cr_expect_str_eq(up.trace, TP_TRACE);
        json_decref(reqs);
        http_resp_free(&r);
    }
}

Test(trace, traceparent_wins_when_the_plain_header_disagrees)
{
    const char *h[] = {"X-Trace-Id: 0af76519-16cd-43dd-8448-eb211c80319c",
                       "traceparent: 00-" TP_TRACE "-" TP_PARENT "-01", NULL};
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/dis", h, NULL, 0, 0, &r), 0);
    rec = only_upstream_request();
    expect_one_trace(&r, rec, TP_TRACE, TP_TRACE, "01");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, plain_header_naming_the_same_trace_keeps_its_spelling)
{
    const char *h[] = {"X-Trace-Id: " TP_TRACE_UUID,
                       "traceparent: 00-" TP_TRACE "-" TP_PARENT "-00", NULL};
    struct http_resp r;
    json_t *rec;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/same", h, NULL, 0, 0, &r), 0);
    rec = only_upstream_request();
    expect_one_trace(&r, rec, TP_TRACE_UUID, TP_TRACE, "00");
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, invalid_traceparent_starts_a_new_trace_without_tracestate)
{
    const char *h[] = {"traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-" TP_PARENT "-01",
                       "tracestate: a=1", NULL};
    struct http_resp r;
    json_t *rec;
    char id[64];
    char hex[33];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/bad-tp", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    cr_assert(is_uuid_v4(id), "\"%s\"", id);
    undash(id, hex);
    rec = only_upstream_request();
    expect_one_trace(&r, rec, id, hex, "03");
    cr_expect_eq(rec_header_count(rec, "tracestate"), 0, "tracestate kept with a bad traceparent");
    json_decref(rec);
    http_resp_free(&r);
}

/* ---- hostile values
 * --------------------------------------------------------------------------------- */

/* Nothing containing marker anywhere: the upstream's records, the answer, the gateway's log
 * (raw, or escaped the way the log escapes). */
static void expect_no_leak(const char *marker, const char *answer)
{
    json_t *reqs = upstream_requests();
    char *dump = json_dumps(reqs, JSON_COMPACT);
    char *log = proc_log(&fx.gw);

    cr_expect_null(strstr(dump, marker), "reached the upstream: %s", dump);
    cr_expect_null(strstr(answer, marker), "came back to the client: %s", answer);
    cr_expect_null(strstr(log, marker), "reached the log %s", fx.gw.log_path);
    free(log);
    free(dump);
    json_decref(reqs);
}

/* Sends a raw request (with Connection: close), returns the whole answer (caller frees) and the
 * X-Trace-Id it carries in id. */
static char *raw_request(const char *msg, size_t len, char *id, size_t cap)
{
    int fd = tcp_connect(fx.gw.ports[0]);
    size_t n;
    char *resp;
    const char *h;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, msg, len), 0);
    resp = tcp_read_all(fd, 5000, &n);
    close(fd);
    id[0] = '\0';
    h = strcasestr(resp, "\r\nX-Trace-Id: ");
    if (h != NULL) {
        size_t k = strcspn(h + 14, "\r\n");
        if (k < cap) {
            memcpy(id, h + 14, k);
            id[k] = '\0';
        }
    }
    return resp;
}

/* The hostile request got a fresh id; if the upstream was called, with that id. */
static void expect_replaced(const char *resp, const char *id, const char *marker)
{
    json_t *reqs;

    cr_expect(is_uuid_v4(id), "id \"%s\" for a hostile value; answer %.300s", id, resp);
    reqs = upstream_requests();
    if (json_array_size(reqs) > 0) {
        cr_expect_str_eq(rec_header(json_array_get(reqs, 0), "X-Trace-Id"), id);
    }
    json_decref(reqs);
    /* The error body (if any) carries the same fresh id. */
    if (strstr(resp, "\"trace_id\"") != NULL) {
        cr_expect_not_null(strstr(resp, id), "%s", resp);
    }
    usleep(100000); /* access log line */
    expect_no_leak(marker, resp);
}

Test(trace, bare_cr_in_the_trace_header_is_replaced)
{
    const char *msg = "GET /raw/h HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
                      "X-Trace-Id: abc\rX-Evil-Cr: 1\r\n\r\n";
    char id[256];
    char *resp = raw_request(msg, strlen(msg), id, sizeof(id));

    /* A bare CR in any field is refused (400) before anything is forwarded. */
    cr_expect(strncmp(resp, "HTTP/1.1 400", 12) == 0, "%.200s", resp);
    expect_replaced(resp, id, "X-Evil-Cr");
    free(resp);
}

Test(trace, folded_trace_header_is_replaced)
{
    const char *msg = "GET /raw/h HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
                      "X-Trace-Id: abc\r\n X-Evil-Fold: 1\r\n\r\n";
    char id[256];
    char *resp = raw_request(msg, strlen(msg), id, sizeof(id));

    expect_replaced(resp, id, "X-Evil-Fold");
    free(resp);
}

Test(trace, crlf_encoded_in_the_trace_header_is_replaced)
{
    const char *h[] = {"X-Trace-Id: abc%0d%0aX-Evil-Enc:%201", NULL};
    struct http_resp r;
    char id[256];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    expect_replaced(r.headers, id, "X-Evil-Enc");
    http_resp_free(&r);
}

Test(trace, non_ascii_trace_header_is_replaced)
{
    const char *h[] = {"X-Trace-Id: evil-\xc3\xa9-mark", NULL};
    struct http_resp r;
    char id[256];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    expect_replaced(r.headers, id, "evil-");
    http_resp_free(&r);
}

Test(trace, trace_header_of_128_chars_is_kept)
{
    char line[200];
    const char *h[] = {line, NULL};
    struct http_resp r;
    char id[256];
    json_t *rec;

    snprintf(line, sizeof(line), "X-Trace-Id: %0128d", 7);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    cr_expect_str_eq(id, line + 12);
    rec = only_upstream_request();
    cr_expect_str_eq(rec_header(rec, "X-Trace-Id"), line + 12);
    json_decref(rec);
    http_resp_free(&r);
}

Test(trace, trace_header_of_129_chars_is_replaced)
{
    char line[200];
    const char *h[] = {line, NULL};
    struct http_resp r;
    char id[256];

    snprintf(line, sizeof(line), "X-Trace-Id: %0129d", 8); /* the value is its own marker */
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    expect_replaced(r.headers, id, line + 12);
    http_resp_free(&r);
}

Test(trace, repeated_trace_header_is_replaced)
{
    const char *h[] = {"X-Trace-Id: dup-mark-1", "X-Trace-Id: dup-mark-2", NULL};
    struct http_resp r;
    char id[256];

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/h", h, NULL, 0, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    expect_replaced(r.headers, id, "dup-mark");
    http_resp_free(&r);
}

/* libmicrohttpd 0.9.75 ends a field value at a NUL before the gateway sees it, so the id is
 * what came before the NUL (a valid id) or a new one. What follows the NUL must never appear. */
Test(trace, nul_in_the_trace_header_never_passes_what_follows)
{
    static const char msg[] = "GET /raw/h HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
                              "X-Trace-Id: abc\0nul-evil-mark\r\n\r\n";
    char id[256];
    char *resp = raw_request(msg, sizeof(msg) - 1, id, sizeof(id));

    cr_expect(strcmp(id, "abc") == 0 || is_uuid_v4(id), "id \"%s\"", id);
    usleep(100000);
    expect_no_leak("nul-evil-mark", resp);
    free(resp);
}

/* ---- the gateway's own answers
 * ------------------------------------------------------------------------ */

/* The answer has status, the X-Trace-Id header is trace_id, and the JSON body says the same;
 * the access log has the line. */
static void expect_error_with_id(const char *resp, size_t resp_len, int status,
                                 const char *trace_id)
{
    const char *body = strstr(resp, "\r\n\r\n");
    char want[64];
    char hdr[256];
    json_t *j;
    json_t *lines = log_lines();
    json_t *done;

    (void)resp_len;
    snprintf(want, sizeof(want), "HTTP/1.1 %d", status);
    cr_assert(strncmp(resp, want, strlen(want)) == 0, "want %d: %.200s", status, resp);
    snprintf(hdr, sizeof(hdr), "\r\nX-Trace-Id: %s\r\n", trace_id);
    cr_expect_not_null(strcasestr(resp, hdr), "no X-Trace-Id %s: %.400s", trace_id, resp);
    cr_assert_not_null(body);
    j = json_loads(body + 4, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(j, "not JSON: %s", body + 4);
    cr_expect_str_eq(str_of(j, "trace_id"), trace_id);
    cr_expect(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    done = log_line(&lines, "request.done", trace_id);
    cr_expect_eq(json_integer_value(json_object_get(done, "status")), status);
    cr_expect_not_null(str_of(done, "span_id"));
    json_decref(lines);
}

/* Sends a raw request with X-Trace-Id: id and checks the error answer. */
static void raw_error_case(const char *method_target, const char *extra, const char *body,
                           int status, const char *id)
{
    char msg[8192];
    char got[256];
    int n = snprintf(msg, sizeof(msg),
                     "%s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nX-Trace-Id: %s\r\n%s\r\n%s",
                     method_target, id, extra, body);
    char *resp;

    cr_assert(n > 0 && (size_t)n < sizeof(msg));
    resp = raw_request(msg, (size_t)n, got, sizeof(got));
    expect_error_with_id(resp, strlen(resp), status, id);
    free(resp);
}

Test(trace, not_found_405_and_400_carry_the_id)
{
    raw_error_case("GET /nowhere", "", "", 404, "err-404");
    raw_error_case("DELETE /only-get", "", "", 405, "err-405");
    raw_error_case("GET /raw/a/../b", "", "", 400, "err-400");
}

Test(trace, too_large_by_content_length_carries_the_id)
{
    raw_error_case("POST /raw/big", "Content-Length: 1025\r\n", "", 413, "err-413-cl");
}

Test(trace, at_the_body_limit_passes_with_the_id)
{
    char body[BODY_LIMIT + 1];
    const char *h[] = {"X-Trace-Id: at-limit", NULL};
    struct http_resp r;
    char id[64];

    memset(body, 'x', BODY_LIMIT);
    body[BODY_LIMIT] = '\0';
    cr_assert_eq(http_do(fx.gw.ports[0], "POST", "/raw/big", h, body, BODY_LIMIT, 0, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(http_header(&r, "X-Trace-Id", id, sizeof(id)));
    cr_expect_str_eq(id, "at-limit");
    http_resp_free(&r);
}

/* The limit is found while reading a chunked body, after the header pass. */
Test(trace, too_large_chunked_body_carries_the_id)
{
    char chunks[4096];
    int n = snprintf(chunks, sizeof(chunks), "%x\r\n", BODY_LIMIT + 1);

    memset(chunks + n, 'y', BODY_LIMIT + 1);
    n += BODY_LIMIT + 1;
    snprintf(chunks + n, sizeof(chunks) - (size_t)n, "\r\n0\r\n\r\n");
    raw_error_case("POST /raw/big", "Transfer-Encoding: chunked\r\n", chunks, 413,
                   "err-413-chunked");
}

Test(trace, bad_gateway_carries_the_id)
{
    raw_error_case("GET /down", "", "", 502, "err-502");
}

Test(trace, gateway_timeout_carries_the_id_on_both_lines)
{
    json_t *lines;
    json_t *call;

    raw_error_case("GET /slow/x?delay_ms=3000", "", "", 504, "err-504");
    lines = log_lines();
    call = log_line(&lines, "upstream.done", "err-504");
    cr_expect_not_null(str_of(call, "span_id"));
    cr_expect_not_null(str_of(call, "parent_span_id"));
    json_decref(lines);
}

/* ---- logs
 * -----------------------------------------------------------------------------------------------
 */

Test(trace, request_lines_carry_ids_and_lifecycle_lines_do_not)
{
    struct http_resp r;
    json_t *lines;
    size_t i;
    json_t *o;
    size_t listening = 0;
    size_t about_requests = 0;

    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/raw/log", NULL, NULL, 0, 0, &r), 0);
    http_resp_free(&r);
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/nowhere", NULL, NULL, 0, 0, &r), 0);
    http_resp_free(&r);
    usleep(200000);
    lines = log_lines();
    json_array_foreach(lines, i, o)
    {
        const char *ev = str_of(o, "event");
        if (ev == NULL) {
            continue;
        }
        if (strncmp(ev, "request.", 8) == 0 || strncmp(ev, "upstream.", 9) == 0) {
            about_requests++;
            cr_expect_not_null(str_of(o, "trace_id"), "%s without trace_id", ev);
            cr_expect_not_null(str_of(o, "span_id"), "%s without span_id", ev);
        } else if (strcmp(ev, "listening") == 0) {
            listening++;
            cr_expect_null(json_object_get(o, "trace_id"), "listening has a trace_id");
            cr_expect_null(json_object_get(o, "span_id"), "listening has a span_id");
        }
    }
    cr_expect_eq(listening, 1);
    cr_expect_geq(about_requests, 2, "two request.done lines expected");
    json_decref(lines);
}

/* ---- many requests
 * ---------------------------------------------------------------------------------------- */

#define MANY 10000
#ifdef __SANITIZE_ADDRESS__
#define MANY_AT_LEAST 2000 /* an ASan build may run out of time before MANY */
#else
#define MANY_AT_LEAST MANY
#endif
#define MANY_BUDGET_US ((uint64_t)18 * 1000 * 1000)

struct ids {
    char (*id)[40];
    size_t n;
    bool bad; /* a header that did not fit */
};

static size_t collect_id(char *data, size_t size, size_t nmemb, void *userp)
{
    struct ids *ids = userp;
    size_t len = size * nmemb;

    if (len > 12 && strncasecmp(data, "X-Trace-Id: ", 12) == 0 && ids->n < MANY) {
        size_t k = strcspn(data + 12, "\r\n");
        if (k >= sizeof(ids->id[0])) {
            ids->bad = true;
            return len;
        }
        memcpy(ids->id[ids->n], data + 12, k);
        ids->id[ids->n][k] = '\0';
        ids->n++;
    }
    return len;
}

/* NOLINTNEXTLINE(readability-non-const-parameter): the type libcurl calls */
static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(trace, ten_thousand_requests_get_ten_thousand_distinct_uuids, .timeout = 120)
{
    struct ids ids = {calloc(MANY, sizeof(ids.id[0])), 0, false};
    CURL *c = curl_easy_init();
    char url[128];
    uint64_t end = now_us() + MANY_BUDGET_US;
    size_t sent = 0;

    cr_assert_not_null(ids.id);
    cr_assert_not_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/raw/many", fx.gw.ports[0]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_id);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &ids);
    while (sent < MANY && now_us() < end) {
        long status = 0;
        cr_assert_eq(curl_easy_perform(c), CURLE_OK, "request %zu", sent);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        cr_assert_eq(status, 200, "request %zu", sent);
        sent++;
        cr_assert_eq(ids.n, sent, "answer %zu had no X-Trace-Id", sent);
    }
    curl_easy_cleanup(c);
    cr_assert_not(ids.bad);
    cr_assert_geq(ids.n, (size_t)MANY_AT_LEAST, "only %zu requests in %u s", ids.n,
                  (unsigned)(MANY_BUDGET_US / 1000000u));
    for (size_t i = 0; i < ids.n; i++) {
        cr_assert(is_uuid_v4(ids.id[i]), "id %zu \"%s\"", i, ids.id[i]);
    }
    qsort(ids.id, ids.n, sizeof(ids.id[0]), cmp_id);
    for (size_t i = 1; i < ids.n; i++) {
        cr_assert_str_neq(ids.id[i - 1], ids.id[i], "id given twice");
    }
    free(ids.id);
}
