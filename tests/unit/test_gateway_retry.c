/* Unit tests for gateway/retry.c: which failed attempts may go again, and the backoff. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/retry.h"

TestSuite(retry, .timeout = 10);

static struct tg_retry_policy def(void)
{
    struct tg_retry_policy p;

    tg_retry_policy_default(&p);
    return p;
}

static bool allowed(const struct tg_retry_policy *p, const char *method, enum tg_outcome o,
                    int status, bool answered)
{
    struct tg_attempt_result r = {o, status, answered};

    return tg_retry_allowed(p, method, 1, &r);
}

Test(retry, a_request_that_never_left_goes_again_whatever_its_method)
{
    struct tg_retry_policy p = def();
    const char *methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "M-SEARCH"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        cr_assert(allowed(&p, methods[i], TG_OUT_CONNECT, 0, false), "%s", methods[i]);
    }
    p.on &= ~TG_RETRY_CONNECT;
    cr_assert(not(allowed(&p, "GET", TG_OUT_CONNECT, 0, false)), "unless retry_on leaves it out");
}

Test(retry, a_post_or_patch_that_was_sent_never_goes_again)
{
    struct tg_retry_policy p = def();

    p.on |= TG_RETRY_TIMEOUT;
    tg_status_set_add(&p.statuses, 500);
    for (int m = 0; m < 2; m++) {
        const char *method = m == 0 ? "POST" : "PATCH";
        cr_assert(not(allowed(&p, method, TG_OUT_RESET, 0, false)), "%s", method);
        cr_assert(not(allowed(&p, method, TG_OUT_TIMEOUT, 0, false)), "%s", method);
        cr_assert(not(allowed(&p, method, TG_OUT_STATUS, 503, true)), "%s", method);
        cr_assert(not(allowed(&p, method, TG_OUT_STATUS, 500, true)), "%s", method);
    }
}

Test(retry, idempotent_methods_retry_what_retry_on_names)
{
    struct tg_retry_policy p = def();
    const char *methods[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const char *m = methods[i];
        cr_assert(allowed(&p, m, TG_OUT_RESET, 0, false), "%s reset before an answer", m);
        cr_assert(not(allowed(&p, m, TG_OUT_RESET, 0, true)), "%s reset mid-answer", m);
        cr_assert(allowed(&p, m, TG_OUT_STATUS, 502, true), "%s", m);
        cr_assert(allowed(&p, m, TG_OUT_STATUS, 503, true), "%s", m);
        cr_assert(allowed(&p, m, TG_OUT_STATUS, 504, true), "%s", m);
        cr_assert(not(allowed(&p, m, TG_OUT_STATUS, 500, true)), "%s: not by default", m);
        cr_assert(not(allowed(&p, m, TG_OUT_TIMEOUT, 0, false)), "%s: not by default", m);
        cr_assert(not(allowed(&p, m, TG_OUT_BACKPRESSURE, 429, true)), "%s", m);
        cr_assert(not(allowed(&p, m, TG_OUT_OK, 404, true)), "%s", m);
        cr_assert(not(allowed(&p, m, TG_OUT_NONE, 0, false)), "%s", m);
    }
    cr_assert(not(allowed(&p, "TRACE", TG_OUT_STATUS, 503, true)), "only the five");
    p.on |= TG_RETRY_TIMEOUT;
    tg_status_set_add(&p.statuses, 429);
    cr_assert(allowed(&p, "GET", TG_OUT_TIMEOUT, 0, false));
    cr_assert(allowed(&p, "GET", TG_OUT_BACKPRESSURE, 429, true));
}

Test(retry, max_attempts_counts_the_first)
{
    struct tg_retry_policy p = def();
    struct tg_attempt_result r = {TG_OUT_CONNECT, 0, false};

    cr_assert(tg_retry_allowed(&p, "GET", 1, &r));
    cr_assert(not(tg_retry_allowed(&p, "GET", 2, &r)), "2 attempts by default");
    p.max_attempts = 1;
    cr_assert(not(tg_retry_allowed(&p, "GET", 1, &r)), "1: no retry at all");
    p.max_attempts = 4;
    cr_assert(tg_retry_allowed(&p, "GET", 3, &r));
    cr_assert(not(tg_retry_allowed(&p, "GET", 4, &r)));
}

Test(retry, full_jitter_between_zero_and_a_doubling_ceiling)
{
    unsigned top[6] = {0};

    for (uint64_t r = 0; r < 5000; r++) {
        for (unsigned k = 1; k <= 5; k++) {
            unsigned ms = tg_retry_backoff_ms(k, r * 0x9E3779B97F4A7C15u);
            if (ms > top[k]) {
                top[k] = ms;
            }
        }
    }
    cr_assert(eq(u32, top[1], 25));
    cr_assert(eq(u32, top[2], 50));
    cr_assert(eq(u32, top[3], 100));
    cr_assert(eq(u32, top[4], 200));
    cr_assert(eq(u32, top[5], 250), "capped");
    cr_assert(eq(u32, tg_retry_backoff_ms(1, 0), 0));
}
