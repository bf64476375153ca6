/* Unit tests for middleware/deadline.c: the two client budget formats (X-Request-Timeout-Ms
 * and grpc-timeout) on both sides of every limit, and how the middleware picks the budget. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/req.h"
#include "middleware/deadline.h"

TestSuite(deadline, .timeout = 10);

/* Sentinel: a failed parse must leave *ms alone. */
#define UNTOUCHED 4242u

/* Parses a NUL-terminated X-Request-Timeout-Ms value; *ms is UNTOUCHED on entry. */
static bool ms_of(const char *s, uint64_t *ms)
{
    *ms = UNTOUCHED;
    return tg_deadline_parse_ms(s, strlen(s), ms);
}

/* Parses a NUL-terminated grpc-timeout value; *ms is UNTOUCHED on entry. */
static bool grpc_of(const char *s, uint64_t *ms)
{
    *ms = UNTOUCHED;
    return tg_deadline_parse_grpc(s, strlen(s), ms);
}

/* Asserts that s is accepted as want milliseconds. */
static void ms_ok(const char *s, uint64_t want)
{
    uint64_t ms;

    cr_assert(ms_of(s, &ms), "\"%s\" should be accepted", s);
    cr_assert(eq(u64, ms, want), "\"%s\"", s);
}

static void ms_bad(const char *s)
{
    uint64_t ms;

    cr_assert_not(ms_of(s, &ms), "\"%s\" should be rejected", s);
    cr_assert(eq(u64, ms, UNTOUCHED), "\"%s\" wrote *ms on failure", s);
}

static void grpc_ok(const char *s, uint64_t want)
{
    uint64_t ms;

    cr_assert(grpc_of(s, &ms), "\"%s\" should be accepted", s);
    cr_assert(eq(u64, ms, want), "\"%s\"", s);
}

static void grpc_bad(const char *s)
{
    uint64_t ms;

    cr_assert_not(grpc_of(s, &ms), "\"%s\" should be rejected", s);
    cr_assert(eq(u64, ms, UNTOUCHED), "\"%s\" wrote *ms on failure", s);
}

/* ---- X-Request-Timeout-Ms ---------------------------------------------------------------- */

Test(deadline, ms_one_is_the_smallest_budget)
{
    ms_ok("1", 1);
}

Test(deadline, ms_zero_is_rejected)
{
    ms_bad("0");
    ms_bad("000000000");
}

Test(deadline, ms_nine_digits_accepted)
{
    ms_ok("999999999", 999999999u);
    ms_ok("000000001", 1);
}

Test(deadline, ms_ten_digits_rejected)
{
    ms_bad("1000000000");
    ms_bad("0000000001"); /* the limit is on digits, not on the value */
}

Test(deadline, ms_empty_and_null_rejected)
{
    uint64_t ms = UNTOUCHED;

    ms_bad("");
    cr_assert_not(tg_deadline_parse_ms(NULL, 0, &ms));
    cr_assert_not(tg_deadline_parse_ms(NULL, 3, &ms));
    cr_assert(eq(u64, ms, UNTOUCHED));
}

Test(deadline, ms_signs_rejected)
{
    ms_bad("+1");
    ms_bad("-1");
    ms_bad("+200");
    ms_bad("-200");
}

Test(deadline, ms_spaces_rejected)
{
    ms_bad(" 200");
    ms_bad("200 ");
    ms_bad("2 00");
    ms_bad("\t200");
}

Test(deadline, ms_non_decimal_rejected)
{
    ms_bad("1.5");
    ms_bad("1e3");
    ms_bad("0x10");
    ms_bad("200ms");
    ms_bad("200m");
    ms_bad("abc");
}

Test(deadline, ms_reads_only_len_bytes)
{
    uint64_t ms = UNTOUCHED;

    cr_assert(tg_deadline_parse_ms("2009", 3, &ms));
    cr_assert(eq(u64, ms, 200));
    ms = UNTOUCHED;
    cr_assert_not(tg_deadline_parse_ms("20x", 3, &ms));
    cr_assert(eq(u64, ms, UNTOUCHED));
}

/* ---- grpc-timeout ------------------------------------------------------------------------ */

Test(deadline, grpc_every_unit)
{
    grpc_ok("1H", 3600000u);
    grpc_ok("1M", 60000u);
    grpc_ok("1S", 1000u);
    grpc_ok("1m", 1u);
    grpc_ok("1000u", 1u);
    grpc_ok("1000000n", 1u);
    grpc_ok("200m", 200u);
    grpc_ok("2S", 2000u);
}

Test(deadline, grpc_unknown_units_rejected)
{
    grpc_bad("1h"); /* units are case-sensitive: m is milli, M is minute */
    grpc_bad("1s");
    grpc_bad("1U");
    grpc_bad("1N");
    grpc_bad("1x");
    grpc_bad("1ms");
    grpc_bad("1mm");
}

Test(deadline, grpc_micro_rounds_up)
{
    grpc_ok("1u", 1);
    grpc_ok("999u", 1);
    grpc_ok("1000u", 1);
    grpc_ok("1001u", 2);
    grpc_ok("1999u", 2);
    grpc_ok("2000u", 2);
}

Test(deadline, grpc_nano_rounds_up)
{
    grpc_ok("1n", 1);
    grpc_ok("999999n", 1);
    grpc_ok("1000000n", 1);
    grpc_ok("1000001n", 2);
    grpc_ok("99999999n", 100); /* 99.999999 ms */
}

Test(deadline, grpc_eight_digits_accepted)
{
    grpc_ok("99999999m", 99999999u);
    grpc_ok("00000001m", 1);
    grpc_ok("99999999S", 99999999000u);
    grpc_ok("99999999M", 5999999940000u);
}

Test(deadline, grpc_nine_digits_rejected)
{
    grpc_bad("100000000m");
    grpc_bad("000000001m");
}

Test(deadline, grpc_hours_saturate_instead_of_overflowing)
{
    uint64_t ms;

    /* 99999999 h in ns is past 2^64: the result must be huge, not wrapped to something small. */
    cr_assert(grpc_of("99999999H", &ms));
    cr_assert(ge(u64, ms, 5000000000000u), "got %llu", (unsigned long long)ms);
    grpc_ok("5124095H", 5124095ull * 3600000ull); /* the largest hour count that fits in ns */
    cr_assert(grpc_of("5124096H", &ms));          /* one more hour: saturated, still huge */
    cr_assert(ge(u64, ms, 18446744000000u), "got %llu", (unsigned long long)ms);
}

Test(deadline, grpc_zero_rejected)
{
    grpc_bad("0m");
    grpc_bad("0n");
    grpc_bad("00000000H");
}

Test(deadline, grpc_empty_and_lone_parts_rejected)
{
    uint64_t ms = UNTOUCHED;

    grpc_bad("");
    grpc_bad("m");
    grpc_bad("1");
    grpc_bad("200");
    cr_assert_not(tg_deadline_parse_grpc(NULL, 0, &ms));
    cr_assert_not(tg_deadline_parse_grpc(NULL, 2, &ms));
    cr_assert(eq(u64, ms, UNTOUCHED));
}

Test(deadline, grpc_signs_rejected)
{
    grpc_bad("+1m");
    grpc_bad("-1m");
    grpc_bad("+200m");
    grpc_bad("-200m");
}

Test(deadline, grpc_spaces_rejected)
{
    grpc_bad(" 200m");
    grpc_bad("200m ");
    grpc_bad("200 m");
    grpc_bad("2 00m");
}

Test(deadline, grpc_non_decimal_rejected)
{
    grpc_bad("1.5S");
    grpc_bad("1e3m");
    grpc_bad("0x1m");
}

/* ---- the middleware ---------------------------------------------------------------------- */

static struct tg_kv hdrs[4];
static struct tg_policy policy;

/* A request that arrived just now on a route with the given budget and policy. */
static void req_init(struct tg_req *req, unsigned route_ms, bool accept_client)
{
    tg_req_init(req);
    memset(hdrs, 0, sizeof(hdrs));
    req->hdrs = hdrs;
    req->start_us = tg_now_us();
    policy = (struct tg_policy){.timeout_ms = route_ms, .accept_client_timeout = accept_client};
    req->policy = &policy;
}

static void add_hdr(struct tg_req *req, const char *name, const char *value)
{
    cr_assert_lt(req->n_hdrs, sizeof(hdrs) / sizeof(hdrs[0]));
    hdrs[req->n_hdrs++] = (struct tg_kv){name, value, strlen(name), strlen(value)};
}

/* The budget the middleware picked, in ms. */
static uint64_t budget_ms(const struct tg_req *req)
{
    return (req->deadline_us - req->start_us) / 1000u;
}

Test(deadline, route_budget_without_client_header)
{
    struct tg_req req;

    req_init(&req, 300, true);
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 300));
}

Test(deadline, client_budget_used_where_the_route_allows)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "x-request-timeout-ms", "200");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 200));
}

Test(deadline, client_budget_ignored_where_the_route_does_not_allow)
{
    struct tg_req req;

    req_init(&req, 2000, false);
    add_hdr(&req, "X-Request-Timeout-Ms", "200");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 2000));
}

Test(deadline, client_budget_never_raises_the_route_budget)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "2001");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 2000));
    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "1999");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 1999));
}

Test(deadline, grpc_timeout_used_where_the_route_allows)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "grpc-timeout", "200m");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 200));
}

Test(deadline, smaller_of_both_client_headers_wins)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "300");
    add_hdr(&req, "grpc-timeout", "1S");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 300));
    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "300");
    add_hdr(&req, "grpc-timeout", "100m");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 100));
}

Test(deadline, invalid_client_header_is_ignored)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "-5");
    add_hdr(&req, "grpc-timeout", "5x");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 2000));
}

Test(deadline, repeated_client_header_is_ignored)
{
    struct tg_req req;

    req_init(&req, 2000, true);
    add_hdr(&req, "X-Request-Timeout-Ms", "100");
    add_hdr(&req, "X-Request-Timeout-Ms", "150");
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
    cr_assert(eq(u64, budget_ms(&req), 2000));
}

Test(deadline, budget_spent_before_the_chain_is_408)
{
    struct tg_req req;

    req_init(&req, 300, false);
    req.start_us -= 301000u; /* arrived 301 ms ago, e.g. a slow body upload */
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_DONE));
    cr_assert(eq(int, req.resp.status, 408));
    cr_assert(req.resp.close);
    cr_assert_not_null(strstr(req.resp.body, "\"error\":\"request timeout\""));
    cr_assert_not_null(req.end.detail);
    tg_req_cleanup(&req);
    req_init(&req, 300, false);
    req.start_us -= 250000u; /* 50 ms left: still goes on */
    cr_assert(eq(int, tg_mw_deadline.on_request(&req), TG_MW_NEXT));
}
