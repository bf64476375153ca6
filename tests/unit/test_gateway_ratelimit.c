#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/ratelimit.h"
#include "gateway/req.h"

TestSuite(ratelimit, .timeout = 10);

Test(ratelimit, a_burst_then_one_per_interval)
{
    struct tg_ratelimit *rl = tg_ratelimit_new(2, 3, 100);
    uint64_t t = tg_now_us() + 1000000;
    unsigned after = 0;

    cr_assert_not_null(rl);
    for (int i = 0; i < 3; i++) {
        cr_assert(tg_ratelimit_take(rl, "a", 1, t, &after), "token %d", i);
    }
    cr_assert(not(tg_ratelimit_take(rl, "a", 1, t, &after)));
    cr_assert(eq(u32, after, 1));
    cr_assert(not(tg_ratelimit_take(rl, "a", 1, t + 499000, &after)), "half a token at 499 ms");
    cr_assert(tg_ratelimit_take(rl, "a", 1, t + 501000, &after), "a token at 501 ms");
    tg_ratelimit_free(rl);
}

Test(ratelimit, clients_have_buckets_of_their_own)
{
    struct tg_ratelimit *rl = tg_ratelimit_new(1, 1, 100);
    uint64_t t = tg_now_us() + 1000000;
    unsigned after = 0;

    cr_assert(tg_ratelimit_take(rl, "alice", 5, t, &after));
    cr_assert(not(tg_ratelimit_take(rl, "alice", 5, t, &after)));
    cr_assert(tg_ratelimit_take(rl, "bob", 3, t, &after));
    tg_ratelimit_free(rl);
}

Test(ratelimit, retry_after_counts_whole_seconds_up)
{
    struct tg_ratelimit *rl = tg_ratelimit_new(1, 1, 100);
    uint64_t t = tg_now_us() + 1000000;
    unsigned after = 0;

    cr_assert(tg_ratelimit_take(rl, "k", 1, t, &after));
    cr_assert(not(tg_ratelimit_take(rl, "k", 1, t + 100000, &after)));
    cr_assert(eq(u32, after, 1));
    tg_ratelimit_free(rl);
}

/* A full table gives idle (refilled) buckets to new clients. */
Test(ratelimit, idle_buckets_are_reused_when_the_table_is_full)
{
    struct tg_ratelimit *rl = tg_ratelimit_new(1000, 1, 1);
    uint64_t t = tg_now_us() + 1000000;
    unsigned after = 0;
    char key[16];

    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "c%d", i);
        cr_assert(tg_ratelimit_take(rl, key, strlen(key), t + (uint64_t)i * 10000, &after),
                  "client %d", i);
    }
    tg_ratelimit_free(rl);
}
