/* Unit tests for routes/merge.c, the pure half of the fan-out handler: how one backend's answer
 * is judged, the merged object, its size cap, and the error body of a failed required backend. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "gateway/err.h"
#include "routes/fanout.h"
#include "routes/merge.h"
#include "routes/table.h"

TestSuite(merge, .timeout = 10);

static char *dup_text(const char *s)
{
    char *p = strdup(s);

    cr_assert_not_null(p);
    return p;
}

static struct tg_merge_part part(const char *name, bool required)
{
    return (struct tg_merge_part){.name = name, .required = required};
}

/* Sets p from a 2xx/other answer with body text s. */
static int answer(struct tg_merge_part *p, int status, const char *s)
{
    return tg_merge_part_set(p, TG_OK, status, s != NULL ? dup_text(s) : NULL,
                             s != NULL ? strlen(s) : 0, NULL, false);
}

static void cleanup(struct tg_merge_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tg_merge_part_cleanup(&parts[i]);
    }
}

/* Builds without a cap and returns the text (caller frees). */
static char *build(const struct tg_merge_part *parts, size_t n, bool *complete)
{
    char *out = NULL;
    size_t len = 0;

    cr_assert_eq(tg_merge_build(parts, n, SIZE_MAX, &out, &len, complete), TG_OK);
    cr_assert_eq(len, strlen(out));
    return out;
}

Test(merge, json_2xx_succeeds)
{
    struct tg_merge_part p = part("a", true);

    cr_assert_eq(answer(&p, 200, "{\"x\":1}"), TG_OK);
    cr_assert(p.settled);
    cr_assert_null(p.cause);
    cr_assert_eq(p.status, 200);
    tg_merge_part_cleanup(&p);
}

Test(merge, status_must_be_2xx_both_edges)
{
    const int ok[] = {200, 204, 299};
    const int bad[] = {199, 300, 304, 404, 500};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct tg_merge_part p = part("a", true);
        cr_expect_eq(answer(&p, ok[i], "{}"), TG_OK, "status %d", ok[i]);
        tg_merge_part_cleanup(&p);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tg_merge_part p = part("a", true);
        char want[32];
        snprintf(want, sizeof(want), "status %d", bad[i]);
        cr_expect_eq(answer(&p, bad[i], "{}"), TG_EUPSTREAM, "status %d", bad[i]);
        cr_expect_str_eq(p.cause, want);
        cr_expect_eq(p.status, bad[i]);
        cr_expect_null(p.body, "a failed part keeps no body");
        tg_merge_part_cleanup(&p);
    }
}

Test(merge, invalid_bodies_fail)
{
    const char *bad[] = {"", "   \n", "{", "{}x", "{} {}", "{'a':1}", "\"\xff\"", "[1,]", "nul"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tg_merge_part p = part("a", false);
        cr_expect_eq(answer(&p, 200, bad[i]), TG_EUPSTREAM, "body #%zu", i);
        cr_expect_str_eq(p.cause, "invalid json", "body #%zu", i);
        cr_expect_eq(p.status, 200);
        tg_merge_part_cleanup(&p);
    }
}

Test(merge, missing_body_is_invalid)
{
    struct tg_merge_part p = part("a", false);

    cr_assert_eq(answer(&p, 200, NULL), TG_EUPSTREAM);
    cr_assert_str_eq(p.cause, "invalid json");
    tg_merge_part_cleanup(&p);
}

Test(merge, embedded_nul_byte_is_invalid)
{
    struct tg_merge_part p = part("a", false);
    char *b = malloc(4);

    cr_assert_not_null(b);
    b[0] = '[';
    b[1] = '1';
    b[2] = '\0';
    b[3] = ']';
    cr_assert_eq(tg_merge_part_set(&p, TG_OK, 200, b, 4, NULL, false), TG_EUPSTREAM);
    tg_merge_part_cleanup(&p);
}

Test(merge, any_json_value_is_accepted)
{
    const char *good[] = {"42", "\"s\"", "null", "true", "[]", "\"a\\u0000b\"", "-0.0e-7"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct tg_merge_part p = part("a", true);
        cr_expect_eq(answer(&p, 200, good[i]), TG_OK, "%s", good[i]);
        tg_merge_part_cleanup(&p);
    }
}

/* Valid JSON that jansson cannot hold: a number beyond a double. A known limit, pinned here so
 * a change of library or flags is noticed. */
Test(merge, double_overflow_is_refused)
{
    struct tg_merge_part p = part("a", false);

    cr_assert_eq(answer(&p, 200, "[1e400000]"), TG_EUPSTREAM);
    tg_merge_part_cleanup(&p);
}

Test(merge, transport_failures_name_their_cause)
{
    struct {
        int err;
        const char *detail;
        bool deadline;
        int want_err;
        const char *want_cause;
    } cases[] = {
        {TG_ETIMEDOUT, "deadline exceeded", false, TG_ETIMEDOUT, "timeout"},
        {TG_ETIMEDOUT, "deadline exceeded", true, TG_ETIMEDOUT, "route deadline"},
        {TG_ERESPTOOBIG, "answer too large", false, TG_EUPSTREAM, "answer too large"},
        {TG_EUPSTREAM, "connect refused", false, TG_EUPSTREAM, "connect refused"},
        {TG_EUPSTREAM, "connection reset", true, TG_EUPSTREAM, "connection reset"},
        {TG_EUPSTREAM, NULL, false, TG_EUPSTREAM, tg_strerror(TG_EUPSTREAM)},
        {TG_ECANCELED, "cancelled", false, TG_ECANCELED, "cancelled"},
        {TG_ENOMEM, NULL, false, TG_ENOMEM, tg_strerror(TG_ENOMEM)},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tg_merge_part p = part("a", true);
        int rc =
            tg_merge_part_set(&p, cases[i].err, 0, NULL, 0, cases[i].detail, cases[i].deadline);
        cr_expect_eq(rc, cases[i].want_err, "case %zu", i);
        cr_expect_eq(p.err, cases[i].want_err, "case %zu", i);
        cr_expect_str_eq(p.cause, cases[i].want_cause, "case %zu", i);
        tg_merge_part_cleanup(&p);
    }
}

Test(merge, timeout_and_too_big_map_to_504_and_502)
{
    struct tg_merge_part t = part("a", true);
    struct tg_merge_part b = part("b", true);

    tg_merge_part_set(&t, TG_ETIMEDOUT, 0, NULL, 0, NULL, false);
    tg_merge_part_set(&b, TG_ERESPTOOBIG, 200, NULL, 0, NULL, false);
    cr_assert_eq(tg_err_http_status(t.err), 504);
    cr_assert_eq(tg_err_http_status(b.err), 502);
    tg_merge_part_cleanup(&t);
    tg_merge_part_cleanup(&b);
}

Test(merge, complete_merge_in_conf_order)
{
    struct tg_merge_part p[3] = {part("zeta", true), part("alpha", false), part("mid", true)};
    bool complete = false;
    char *out;

    answer(&p[0], 200, "{\"n\":{\"deep\":[1,{\"x\":null}]}}");
    answer(&p[1], 201, "  [1, 2]\r\n");
    answer(&p[2], 200, "\"s\"");
    out = build(p, 3, &complete);
    cr_assert_str_eq(out, "{\"zeta\":{\"n\":{\"deep\":[1,{\"x\":null}]}},\"alpha\":[1, 2],"
                          "\"mid\":\"s\"}");
    cr_assert(complete);
    free(out);
    cleanup(p, 3);
}

Test(merge, backend_bytes_survive_exactly)
{
    const char *body =
        "{\"dose\":0.1,\"n\":1e2,\"big\":12345678901234567890,\"k\":\"a\",\"k\":\"b\","
        "\"name\":\"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\","
        "\"esc\":\"\\u00e9\\n\"}";
    struct tg_merge_part p = part("a", true);
    bool complete = false;
    char *out;
    char *want = NULL;

    cr_assert_eq(answer(&p, 200, body), TG_OK);
    out = build(&p, 1, &complete);
    cr_assert(asprintf(&want, "{\"a\":%s}", body) > 0);
    cr_assert_str_eq(out, want);
    free(want);
    free(out);
    tg_merge_part_cleanup(&p);
}

Test(merge, optional_failure_gives_null_and_errors)
{
    struct tg_merge_part p[3] = {part("a", true), part("b", false), part("c", false)};
    bool complete = true;
    char *out;

    answer(&p[0], 200, "{}");
    answer(&p[1], 503, "{\"error\":\"down\"}");
    tg_merge_part_set(&p[2], TG_ETIMEDOUT, 0, NULL, 0, NULL, false);
    out = build(p, 3, &complete);
    cr_assert_str_eq(out, "{\"a\":{},\"b\":null,\"c\":null,\"_errors\":{"
                          "\"b\":{\"error\":\"status 503\",\"status\":503},"
                          "\"c\":{\"error\":\"timeout\",\"status\":null}}}");
    cr_assert_not(complete);
    free(out);
    cleanup(p, 3);
}

Test(merge, unsettled_part_is_null)
{
    struct tg_merge_part p[2] = {part("a", false), part("b", false)};
    bool complete = true;
    char *out;

    answer(&p[0], 200, "1");
    out = build(p, 2, &complete);
    cr_assert_str_eq(out, "{\"a\":1,\"b\":null,\"_errors\":{\"b\":{\"error\":\"not called\","
                          "\"status\":null}}}");
    cr_assert_not(complete);
    free(out);
    cleanup(p, 2);
}

Test(merge, merged_text_is_json)
{
    struct tg_merge_part p[TG_FANOUT_MAX] = {0};
    bool complete = false;
    char *out;
    json_t *j;

    for (size_t i = 0; i < TG_FANOUT_MAX; i++) {
        static char names[TG_FANOUT_MAX][8];
        snprintf(names[i], sizeof(names[i]), "b%zu", i);
        p[i] = part(names[i], i % 2 == 0);
        if (i % 3 == 0) {
            answer(&p[i], 500, "x");
        } else {
            answer(&p[i], 200, "{\"i\":[\"\xc3\xa9\"]}");
        }
    }
    out = build(p, TG_FANOUT_MAX, &complete);
    j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_assert_eq(json_object_size(j), TG_FANOUT_MAX + 1);
    cr_assert(json_is_null(json_object_get(j, "b0")));
    cr_assert_str_eq(
        json_string_value(json_array_get(json_object_get(json_object_get(j, "b1"), "i"), 0)),
        "\xc3\xa9");
    cr_assert_eq(json_object_size(json_object_get(j, "_errors")), 6);
    json_decref(j);
    free(out);
    cleanup(p, TG_FANOUT_MAX);
}

Test(merge, size_cap_both_sides)
{
    struct tg_merge_part p[2] = {part("a", true), part("b", false)};
    const char *want = "{\"a\":[1,2,3],\"b\":null,\"_errors\":{\"b\":{\"error\":\"timeout\","
                       "\"status\":null}}}";
    size_t n = strlen(want);
    char *out = NULL;
    size_t len = 0;
    bool complete = true;

    answer(&p[0], 200, "[1,2,3]");
    tg_merge_part_set(&p[1], TG_ETIMEDOUT, 0, NULL, 0, NULL, false);
    cr_assert_eq(tg_merge_build(p, 2, n - 1, &out, &len, &complete), TG_ETOOBIG);
    cr_assert_null(out);
    cr_assert_eq(tg_merge_build(p, 2, n, &out, &len, &complete), TG_OK);
    cr_assert_eq(len, n);
    cr_assert_str_eq(out, want);
    free(out);
    cleanup(p, 2);
}

Test(merge, cleanup_is_idempotent)
{
    struct tg_merge_part p = part("a", true);

    answer(&p, 200, "{}");
    tg_merge_part_cleanup(&p);
    tg_merge_part_cleanup(&p);
    cr_assert_null(p.body);
    cr_assert_not(p.settled);
}
