/* Unit tests for gateway/breaker.c: the SRE throttle's ratio, its sliding window, the probe. */
#include <stdint.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/breaker.h"
#include "gateway/conf.h"

#define SEC UINT64_C(1000000)

TestSuite(breaker, .timeout = 10);

static const struct tg_breaker_conf on = {true, 1.5, 10000, 5};

static void record(struct tg_breaker *b, unsigned n, bool accepted, uint64_t now)
{
    for (unsigned i = 0; i < n; i++) {
        tg_breaker_record(b, &on, now, accepted);
    }
}

Test(breaker, the_ratio_is_the_sre_formula)
{
    struct tg_breaker b = {0};

    record(&b, 5, false, SEC);
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &on, SEC), 0.0), "five failures are the floor");
    record(&b, 15, false, SEC);
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &on, SEC), 15.0 / 21.0));
    record(&b, 4, true, SEC);
    /* (24 - 5 - 1.5 * 4) / 25 */
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &on, SEC), 13.0 / 25.0));
}

Test(breaker, mostly_successful_calls_never_throttle)
{
    struct tg_breaker b = {0};

    /* 30 % failing: accepts * 1.5 still outweigh the requests (it throttles below 2/3) */
    for (int i = 0; i < 100; i++) {
        tg_breaker_record(&b, &on, SEC, i % 10 >= 3);
    }
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &on, SEC), 0.0));
    for (int i = 0; i < 100; i++) {
        cr_assert(tg_breaker_allow(&b, &on, SEC, 0.0));
    }
}

Test(breaker, counts_slide_out_of_the_window)
{
    struct tg_breaker b = {0};
    uint32_t r, a;

    record(&b, 30, false, SEC);
    record(&b, 10, true, 6 * SEC);
    tg_breaker_counts(&b, &on, 6 * SEC, &r, &a);
    cr_assert(eq(u32, r, 40));
    cr_assert(eq(u32, a, 10));
    /* ten seconds on, the failures of second 1 are gone, the successes of second 6 are not */
    tg_breaker_counts(&b, &on, 11 * SEC + SEC / 2, &r, &a);
    cr_assert(eq(u32, r, 10));
    cr_assert(eq(u32, a, 10));
    tg_breaker_counts(&b, &on, 20 * SEC, &r, &a);
    cr_assert(eq(u32, r, 0));
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &on, 20 * SEC), 0.0));
}

Test(breaker, a_bucket_reused_for_a_later_slice_starts_from_zero)
{
    struct tg_breaker b = {0};
    uint32_t r, a;

    record(&b, 7, false, SEC);
    /* exactly one window later the same bucket holds a new slice */
    record(&b, 2, true, 11 * SEC);
    tg_breaker_counts(&b, &on, 11 * SEC, &r, &a);
    cr_assert(eq(u32, r, 2));
    cr_assert(eq(u32, a, 2));
}

Test(breaker, one_probe_a_second_goes_however_high_the_ratio)
{
    struct tg_breaker b = {0};
    int allowed = 0;

    record(&b, 1000, false, SEC);
    cr_assert(gt(dbl, tg_breaker_ratio(&b, &on, SEC), 0.99));
    for (int i = 0; i < 100; i++) {
        allowed += tg_breaker_allow(&b, &on, SEC + (uint64_t)i * 1000u, 0.0);
    }
    cr_assert(eq(int, allowed, 1), "the probe, then nothing within the second");
    cr_assert(tg_breaker_allow(&b, &on, 2 * SEC + 1000u, 0.0), "a second later, the next probe");
    cr_assert(not(tg_breaker_allow(&b, &on, 2 * SEC + 2000u, 0.0)));
    cr_assert(tg_breaker_allow(&b, &on, 2 * SEC + 3000u, 0.999), "a draw above the ratio goes");
}

Test(breaker, off_means_never)
{
    struct tg_breaker_conf off = on;
    struct tg_breaker b = {0};

    off.on = false;
    record(&b, 1000, false, SEC);
    cr_assert(eq(dbl, tg_breaker_ratio(&b, &off, SEC), 0.0));
    cr_assert(tg_breaker_allow(&b, &off, SEC, 0.0));
}
