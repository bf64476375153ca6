/* The request head with the default connection buffer (limits.connection_buffer_bytes 8192):
 * what real clients send (a bearer token, cookies and the usual headers, 4 KiB) passes; past
 * limits.max_header_bytes (the buffer less the room the answer's head needs) the gateway answers
 * its own JSON 431 with the trace id, and closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/fixture.h"
#include "tests/support/raw_http.h"

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, false);
    fixture_gateway_start(&fx, "head.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(head, .init = setup, .fini = teardown, .timeout = 30);

/* A request head of exactly total bytes: a bearer token of the right size and the headers a
 * browser-based app sends. */
#define HEAD_FMT                                                               \
    "GET /s/x HTTP/1.1\r\nHost: gateway.hospital.example\r\n"                  \
    "User-Agent: Mozilla/5.0 (Linux; Android 14) ePRO/3.2\r\n"                 \
    "Accept: application/json\r\nAccept-Language: de-CH,de;q=0.9,en;q=0.8\r\n" \
    "Accept-Encoding: gzip, deflate, br\r\nCookie: session=%s\r\n"             \
    "X-Trace-Id: head-test\r\nAuthorization: Bearer %s\r\n\r\n"

static char *head_of(size_t total)
{
    size_t fixed = strlen(HEAD_FMT) - 4 + 32;
    char cookie[33];
    char *token;
    char *out = malloc(total + 1);

    cr_assert(out != NULL && total > fixed);
    memset(cookie, 'c', 32);
    cookie[32] = '\0';
    token = malloc(total - fixed + 1);
    memset(token, 't', total - fixed);
    token[total - fixed] = '\0';
    snprintf(out, total + 1, HEAD_FMT, cookie, token);
    free(token);
    cr_assert_eq(strlen(out), total);
    return out;
}

Test(head, four_kib_head_passes)
{
    char *msg = head_of(4096);
    struct raw_answer a = {0};

    raw_exchange(fx.gw.ports[0], msg, strlen(msg), 1, false, &a);
    cr_expect_eq(a.n, 1, "%s", a.buf);
    cr_expect_eq(a.status[0], 200, "%s", a.buf);
    raw_answer_free(&a);
    free(msg);
}

Test(head, at_the_limit_and_past_it)
{
    char *msg = head_of(6144);
    struct raw_answer a = {0};
    json_t *j;

    raw_exchange(fx.gw.ports[0], msg, strlen(msg), 1, false, &a);
    cr_expect_eq(a.status[0], 200, "%s", a.buf);
    raw_answer_free(&a);
    free(msg);
    msg = head_of(6145);
    raw_exchange(fx.gw.ports[0], msg, strlen(msg), 1, true, &a);
    cr_assert_eq(a.n, 1, "%s", a.buf);
    cr_expect_eq(a.status[0], 431, "%s", a.buf);
    cr_expect(strstr(a.buf, "X-Trace-Id: head-test\r\n") != NULL, "%s", a.buf);
    j = json_loadb(a.buf + a.body_off[0], a.body_len[0], 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")),
                     "request header fields too large");
    cr_expect_str_eq(json_string_value(json_object_get(j, "trace_id")), "head-test");
    cr_expect(a.closed, "a refused head closes the connection");
    json_decref(j);
    raw_answer_free(&a);
    free(msg);
}

/* Until the buffer is nearly full the gateway still answers its own 431. */
Test(head, seven_kib_head_gets_the_json_431)
{
    char *msg = head_of(7168);
    struct raw_answer a = {0};

    raw_exchange(fx.gw.ports[0], msg, strlen(msg), 1, true, &a);
    cr_expect_eq(a.status[0], 431, "%s", a.buf);
    cr_expect(strstr(a.buf, "\"trace_id\":\"head-test\"") != NULL, "%s", a.buf);
    raw_answer_free(&a);
    free(msg);
}
