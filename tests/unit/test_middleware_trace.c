/* Unit tests for middleware/trace.c: which trace id a request gets (W3C traceparent, then the
 * configured plain header, then a new UUID), how hostile values are replaced, what is kept for
 * the upstream calls (trace-id, flags, tracestate) and what the client gets back. The request
 * and the conf are built by hand; no server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/req.h"
#include "gateway/trace_context.h"
#include "middleware/trace.h"

#define MAX_HDRS 8

#define TP_TRACE  "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_PARENT "00f067aa0ba902b7"
#define TP(flags) "00-" TP_TRACE "-" TP_PARENT "-" flags
/* The same trace-id as a UUID, in upper case: the plain header may spell it so. */
#define TP_TRACE_UUID "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736"

static struct tg_req req;
static struct tg_kv hdrs[MAX_HDRS];
static struct tg_conf *conf;

static void reset(void)
{
    req.conf = NULL; /* the suite's own, not a reference */
    req.hdrs = NULL;
    tg_req_cleanup(&req);
    tg_req_init(&req);
    memset(hdrs, 0, sizeof(hdrs));
    req.hdrs = hdrs;
    req.conf = conf;
}

static void setup(void)
{
    conf = calloc(1, sizeof(*conf));
    cr_assert_not_null(conf);
    conf->trace_header = strdup("X-Trace-Id");
    conf->trace_accept[0] = strdup("trace-id");
    conf->n_trace_accept = 1;
    cr_assert_not_null(conf->trace_header);
    cr_assert_not_null(conf->trace_accept[0]);
    reset();
}

static void teardown(void)
{
    reset();
    free(conf->trace_header);
    free(conf->trace_accept[0]);
    free(conf);
    conf = NULL;
}

TestSuite(trace, .init = setup, .fini = teardown, .timeout = 10);

/* Adds a header whose value is value_len bytes (so NUL can be part of it). */
static void add_hdrn(const char *name, const char *value, size_t value_len)
{
    cr_assert(lt(sz, req.n_hdrs, (size_t)MAX_HDRS));
    hdrs[req.n_hdrs++] = (struct tg_kv){name, value, strlen(name), value_len};
}

static void add_hdr(const char *name, const char *value)
{
    add_hdrn(name, value, strlen(value));
}

static void extract(void)
{
    cr_assert(eq(int, tg_mw_trace.on_headers(&req), TG_OK));
}

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
    if (strlen(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        if (i != 8 && i != 13 && i != 18 && i != 23 && !is_lower_hex(s + i, 1)) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* The UUID without its dashes. */
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

/* What every decision must leave behind, whatever the source of the id. */
static void expect_consistent(void)
{
    char hex[33];

    cr_assert(eq(sz, strlen(req.trace.w3c), 32));
    cr_assert(is_lower_hex(req.trace.w3c, 32), "%s", req.trace.w3c);
    tg_hex_lower(req.trace.bin, 16, hex);
    cr_assert(eq(str, hex, req.trace.w3c), "trace_bin and trace_w3c differ");
    cr_assert(eq(sz, strlen(req.trace.span), 16));
    cr_assert(is_lower_hex(req.trace.span, 16));
    cr_assert(ne(str, req.trace.span, "0000000000000000"));
    cr_assert(eq(u8, req.trace.flags & ~(TG_TRACE_FLAG_SAMPLED | TG_TRACE_FLAG_RANDOM), 0),
              "reserved flag bits must not be sent: %02x", req.trace.flags);
}

/* A fresh id: a UUID v4 that is also the W3C trace-id, sampled and random, no tracestate. */
static void expect_new_id(const char *why)
{
    char hex[33];

    expect_consistent();
    cr_assert(is_uuid_v4(req.trace.id), "%s: \"%s\" is not a new UUID", why, req.trace.id);
    undash(req.trace.id, hex);
    cr_assert(eq(str, hex, req.trace.w3c), "%s", why);
    cr_assert(eq(u8, req.trace.flags, TG_TRACE_FLAG_SAMPLED | TG_TRACE_FLAG_RANDOM), "%s", why);
    cr_assert_null(req.trace.state, "%s: tracestate kept without a valid traceparent", why);
}

/* ---- no incoming id ----------------------------------------------------------------------- */

Test(trace, no_header_gets_a_new_uuid)
{
    extract();
    expect_new_id("no header");
}

Test(trace, two_requests_get_different_ids_and_spans)
{
    char id[TG_TRACE_ID_MAX + 1];
    char span[17];

    extract();
    memcpy(id, req.trace.id, sizeof(id));
    memcpy(span, req.trace.span, sizeof(span));
    reset();
    extract();
    cr_assert(ne(str, req.trace.id, id));
    cr_assert(ne(str, req.trace.span, span));
}

Test(trace, unrelated_headers_are_ignored)
{
    add_hdr("X-Request-Id", "abc");
    add_hdr("Trace-Id-X", "abc");
    add_hdr("tracestate", "a=1");
    extract();
    expect_new_id("unrelated headers");
}

/* ---- plain header ------------------------------------------------------------------------- */

Test(trace, plain_id_is_kept_with_a_random_w3c_trace_id)
{
    add_hdr("X-Trace-Id", "demo-trace-1");
    extract();
    expect_consistent();
    cr_assert(eq(str, req.trace.id, "demo-trace-1"));
    /* Not a UUID: the W3C side gets random bytes, which makes the random flag true. */
    cr_assert(eq(u8, req.trace.flags, TG_TRACE_FLAG_SAMPLED | TG_TRACE_FLAG_RANDOM));
}

Test(trace, plain_header_name_is_case_insensitive)
{
    add_hdr("x-TRACE-id", "abc");
    extract();
    cr_assert(eq(str, req.trace.id, "abc"));
}

Test(trace, plain_uuid_is_the_w3c_trace_id)
{
    add_hdr("X-Trace-Id", TP_TRACE_UUID);
    extract();
    expect_consistent();
    cr_assert(eq(str, req.trace.id, TP_TRACE_UUID), "the id is kept as the client spelled it");
    cr_assert(eq(str, req.trace.w3c, TP_TRACE));
    /* The client's bytes may not be random: only sampled. */
    cr_assert(eq(u8, req.trace.flags, TG_TRACE_FLAG_SAMPLED));
}

Test(trace, plain_32_hex_is_the_w3c_trace_id)
{
    add_hdr("X-Trace-Id", TP_TRACE);
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE));
    cr_assert(eq(str, req.trace.w3c, TP_TRACE));
}

Test(trace, plain_all_zero_uuid_is_kept_but_not_the_w3c_id)
{
    /* A valid plain id, but an all-zero W3C trace-id is invalid: a random one is used. */
    add_hdr("X-Trace-Id", "00000000-0000-0000-0000-000000000000");
    extract();
    expect_consistent();
    cr_assert(eq(str, req.trace.id, "00000000-0000-0000-0000-000000000000"));
    cr_assert(ne(str, req.trace.w3c, "00000000000000000000000000000000"));
}

Test(trace, plain_every_allowed_character_passes)
{
    char id[] = "AZaz09._:-";

    add_hdr("X-Trace-Id", id);
    extract();
    cr_assert(eq(str, req.trace.id, id));
}

Test(trace, plain_128_chars_pass_and_129_are_replaced)
{
    char v[TG_TRACE_ID_MAX + 2];

    memset(v, 'a', sizeof(v));
    add_hdrn("X-Trace-Id", v, 128);
    extract();
    cr_assert(eq(sz, strlen(req.trace.id), 128));
    cr_assert(eq(int, memcmp(req.trace.id, v, 128), 0));
    reset();
    add_hdrn("X-Trace-Id", v, 129);
    extract();
    expect_new_id("129 chars");
}

Test(trace, plain_one_char_passes_and_empty_is_replaced)
{
    add_hdr("X-Trace-Id", "x");
    extract();
    cr_assert(eq(str, req.trace.id, "x"));
    reset();
    add_hdr("X-Trace-Id", "");
    extract();
    expect_new_id("empty");
}

Test(trace, hostile_plain_values_are_replaced)
{
    static const char nul[] = "abc\0def";
    const char *bad[] = {"abc\r\nX-Evil: 1",
                         "abc\rdef",
                         "abc\ndef",
                         "a b",
                         "a\tb",
                         "gr\xc3\xbc\xc3\x9f",
                         "\xff",
                         "a/b",
                         "a\"b",
                         "a,b",
                         "a;b",
                         "<script>",
                         "a\x7f",
                         "a%0d%0a"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reset();
        add_hdr("X-Trace-Id", bad[i]);
        extract();
        expect_new_id(bad[i]);
    }
    reset();
    add_hdrn("X-Trace-Id", nul, sizeof(nul) - 1);
    extract();
    expect_new_id("NUL inside");
}

Test(trace, repeated_plain_header_is_replaced_even_when_both_are_valid)
{
    add_hdr("X-Trace-Id", "abc");
    add_hdr("X-Trace-Id", "abc");
    extract();
    expect_new_id("same value twice");
    reset();
    add_hdr("X-Trace-Id", "abc");
    add_hdr("x-trace-id", "def");
    extract();
    expect_new_id("two values");
}

Test(trace, accept_name_is_used_when_the_main_header_is_absent)
{
    add_hdr("Trace-Id", "from-accept");
    extract();
    cr_assert(eq(str, req.trace.id, "from-accept"));
}

Test(trace, main_header_wins_over_accept_name)
{
    add_hdr("trace-id", "second");
    add_hdr("X-Trace-Id", "first");
    extract();
    cr_assert(eq(str, req.trace.id, "first"));
}

Test(trace, hostile_main_header_is_not_rescued_by_accept_name)
{
    /* A request carrying a hostile id does not get to pick another one. */
    add_hdr("X-Trace-Id", "bad value");
    add_hdr("trace-id", "good");
    extract();
    expect_new_id("hostile X-Trace-Id");
}

Test(trace, repeated_accept_name_is_replaced)
{
    add_hdr("trace-id", "a");
    add_hdr("trace-id", "b");
    extract();
    expect_new_id("trace-id twice");
}

Test(trace, configured_header_name_replaces_the_default)
{
    free(conf->trace_header);
    conf->trace_header = strdup("X-Request-Id");
    cr_assert_not_null(conf->trace_header);
    add_hdr("X-Trace-Id", "ignored");
    extract();
    expect_new_id("X-Trace-Id is not configured");
    reset();
    add_hdr("X-Request-Id", "mine");
    extract();
    cr_assert(eq(str, req.trace.id, "mine"));
}

/* ---- traceparent -------------------------------------------------------------------------- */

Test(trace, valid_traceparent_gives_its_trace_id)
{
    add_hdr("traceparent", TP("01"));
    extract();
    expect_consistent();
    cr_assert(eq(str, req.trace.id, TP_TRACE));
    cr_assert(eq(str, req.trace.w3c, TP_TRACE));
    cr_assert(ne(str, req.trace.span, TP_PARENT), "the gateway's span is its own");
}

Test(trace, sampled_flag_is_passed_on_both_ways)
{
    add_hdr("traceparent", TP("00"));
    extract();
    cr_assert(eq(u8, req.trace.flags, 0x00));
    reset();
    add_hdr("traceparent", TP("01"));
    extract();
    cr_assert(eq(u8, req.trace.flags, 0x01));
}

Test(trace, random_flag_is_kept_and_reserved_bits_cleared)
{
    add_hdr("traceparent", TP("03"));
    extract();
    cr_assert(eq(u8, req.trace.flags, 0x03));
    reset();
    add_hdr("traceparent", TP("ff"));
    extract();
    cr_assert(eq(u8, req.trace.flags, 0x03));
    reset();
    add_hdr("traceparent", TP("fc"));
    extract();
    cr_assert(eq(u8, req.trace.flags, 0x00));
}

Test(trace, traceparent_wins_over_a_valid_plain_header)
{
    add_hdr("X-Trace-Id", "demo-trace-1");
    add_hdr("traceparent", TP("01"));
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE), "disagreement: traceparent wins");
    cr_assert(eq(str, req.trace.w3c, TP_TRACE));
}

Test(trace, traceparent_wins_over_a_different_uuid)
{
    add_hdr("X-Trace-Id", "0af76519-16cd-43dd-8448-eb211c80319c");
    add_hdr("traceparent", TP("01"));
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE));
}

Test(trace, plain_header_naming_the_same_trace_is_kept)
{
    add_hdr("X-Trace-Id", TP_TRACE_UUID);
    add_hdr("traceparent", TP("00"));
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE_UUID));
    cr_assert(eq(str, req.trace.w3c, TP_TRACE));
    cr_assert(eq(u8, req.trace.flags, 0x00), "the flags still come from traceparent");
}

Test(trace, hostile_plain_header_with_valid_traceparent_gives_the_w3c_id)
{
    add_hdr("X-Trace-Id", "abc\rdef");
    add_hdr("traceparent", TP("01"));
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE));
}

Test(trace, invalid_traceparents_start_a_new_trace)
{
    const char *bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace-id */
        "00-" TP_TRACE "-0000000000000000-01",                     /* zero parent-id */
        "ff-" TP_TRACE "-" TP_PARENT "-01",                        /* version ff */
        "00-" TP_TRACE "-" TP_PARENT "-01-extra",                  /* 00 with more */
        "00-" TP_TRACE "-" TP_PARENT "-1",                         /* short flags */
        "00_" TP_TRACE "_" TP_PARENT "_01",                        /* separators */
        "00-" TP_TRACE "-" TP_PARENT "-0g",                        /* not hex */
        "",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reset();
        add_hdr("traceparent", bad[i]);
        add_hdr("tracestate", "a=1");
        extract();
        expect_new_id(bad[i]);
    }
}

Test(trace, invalid_traceparent_falls_back_to_the_plain_header)
{
    add_hdr("traceparent", "garbage");
    add_hdr("tracestate", "a=1");
    add_hdr("X-Trace-Id", "demo-trace-2");
    extract();
    cr_assert(eq(str, req.trace.id, "demo-trace-2"));
    cr_assert_null(req.trace.state, "tracestate must go with an invalid traceparent");
}

Test(trace, repeated_traceparent_is_invalid)
{
    add_hdr("traceparent", TP("01"));
    add_hdr("traceparent", TP("01"));
    add_hdr("tracestate", "a=1");
    extract();
    expect_new_id("traceparent twice");
}

Test(trace, higher_version_is_read_by_its_first_fields)
{
    add_hdr("traceparent", "01-" TP_TRACE "-" TP_PARENT "-01-what-comes-later");
    extract();
    cr_assert(eq(str, req.trace.id, TP_TRACE));
}

/* ---- tracestate --------------------------------------------------------------------------- */

static void with_tp_and_state(const char *state)
{
    reset();
    add_hdr("traceparent", TP("01"));
    add_hdr("tracestate", state);
    extract();
}

Test(trace, valid_tracestate_is_kept)
{
    with_tp_and_state("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(str, req.trace.state, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
}

Test(trace, tracestate_whitespace_and_empty_members_are_removed)
{
    with_tp_and_state(" a=1 ,\t, b=2,, ");
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(str, req.trace.state, "a=1,b=2"));
}

Test(trace, repeated_tracestate_headers_are_one_list)
{
    reset();
    add_hdr("tracestate", "a=1");
    add_hdr("traceparent", TP("01"));
    add_hdr("TraceState", "b=2");
    extract();
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(str, req.trace.state, "a=1,b=2"));
}

Test(trace, empty_tracestate_sends_none)
{
    with_tp_and_state(" , ");
    cr_assert_null(req.trace.state);
    cr_assert(eq(str, req.trace.id, TP_TRACE), "the trace itself stays");
}

Test(trace, invalid_tracestate_is_dropped_whole)
{
    const char *bad[] = {"A=1", "a=1,B=2", "a", "a=", "=1", "a=1\r\nX: y", "a=b,c", "a=1\x7f"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        with_tp_and_state(bad[i]);
        cr_assert_null(req.trace.state, "\"%s\" kept as \"%s\"", bad[i], req.trace.state);
        cr_assert(eq(str, req.trace.id, TP_TRACE));
    }
}

Test(trace, tracestate_32_members_pass_and_33_are_dropped)
{
    char s[33 * 8];
    size_t len = 0;

    for (int i = 0; i < 33; i++) {
        len += (size_t)snprintf(s + len, sizeof(s) - len, "%sk%d=v", i ? "," : "", i);
        if (i == 31) {
            with_tp_and_state(s);
            cr_assert_not_null(req.trace.state, "32 members");
            cr_assert(eq(str, req.trace.state, s));
        }
    }
    with_tp_and_state(s);
    cr_assert_null(req.trace.state, "33 members");
}

/* Eight members of 63 or 64 characters: 7 * 63 + 64 + 7 commas = 512 with extra = 0. */
static void long_state(char *s, size_t cap, size_t extra)
{
    size_t len = 0;

    for (int i = 0; i < 8; i++) {
        size_t vlen = 63 - 3 + (i == 7 ? 1 + extra : 0); /* "kN=" is 3 characters */
        len += (size_t)snprintf(s + len, cap - len, "%sk%d=", i ? "," : "", i);
        memset(s + len, 'v', vlen);
        len += vlen;
    }
    s[len] = '\0';
}

Test(trace, tracestate_of_512_chars_passes_whole_and_513_loses_its_last_member)
{
    char s[600];

    long_state(s, sizeof(s), 0);
    cr_assert(eq(sz, strlen(s), TG_TRACESTATE_MAX));
    with_tp_and_state(s);
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(str, req.trace.state, s));
    long_state(s, sizeof(s), 1);
    cr_assert(eq(sz, strlen(s), TG_TRACESTATE_MAX + 1));
    with_tp_and_state(s);
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(sz, strlen(req.trace.state), 7 * 63 + 6), "%s", req.trace.state);
    cr_assert(eq(int, strncmp(req.trace.state, s, 7 * 63 + 6), 0), "left-most members kept");
}

Test(trace, tracestate_longer_than_any_buffer_is_cut_not_dropped)
{
    /* 32 members of 254 characters each: far beyond 512, still valid, so it is cut. */
    char *s = malloc(32 * 256 + 1);
    size_t len = 0;

    cr_assert_not_null(s);
    for (int i = 0; i < 32; i++) {
        len += (size_t)snprintf(s + len, 32 * 256 + 1 - len, "%sk%02d=", i ? "," : "", i);
        memset(s + len, 'v', 250);
        len += 250;
    }
    s[len] = '\0';
    with_tp_and_state(s);
    free(s);
    /* Every member is over 128 characters, so they go right-most first until the rest fits:
     * the two left-most members of 254 characters and a comma. */
    cr_assert_not_null(req.trace.state);
    cr_assert(eq(sz, strlen(req.trace.state), 2 * 254 + 1));
    cr_assert(eq(int, strncmp(req.trace.state, "k00=", 4), 0), "%s", req.trace.state);
    cr_assert(eq(int, strncmp(req.trace.state + 255, "k01=", 4), 0), "%s", req.trace.state);
}

/* ---- what the client gets back ------------------------------------------------------------- */

Test(trace, response_carries_the_id_and_the_gateways_traceparent)
{
    char want[64];

    add_hdr("X-Trace-Id", "demo-trace-3");
    extract();
    tg_mw_trace.on_response(&req);
    cr_assert_not_null(tg_resp_header_get(&req.resp, "X-Trace-Id"));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "X-Trace-Id"), "demo-trace-3"));
    snprintf(want, sizeof(want), "00-%s-%s-%02x", req.trace.w3c, req.trace.span, req.trace.flags);
    cr_assert_not_null(tg_resp_header_get(&req.resp, "traceparent"));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "traceparent"), want));
}

Test(trace, response_uses_the_configured_header_name)
{
    free(conf->trace_header);
    conf->trace_header = strdup("X-Request-Id");
    cr_assert_not_null(conf->trace_header);
    extract();
    tg_mw_trace.on_response(&req);
    cr_assert_null(tg_resp_header_get(&req.resp, "X-Trace-Id"));
    cr_assert_not_null(tg_resp_header_get(&req.resp, "X-Request-Id"));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "X-Request-Id"), req.trace.id));
}

Test(trace, error_body_carries_the_trace_id)
{
    extract();
    tg_req_fail(&req, TG_ENOROUTE, NULL);
    cr_assert_not_null(req.resp.body);
    cr_assert_not_null(strstr(req.resp.body, req.trace.id), "%s", req.resp.body);
}
