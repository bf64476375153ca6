#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/readtimer.h"

static int fired[8];
static size_t n_fired;

static void on_expired(void *arg, int fd)
{
    (void)arg;
    fired[n_fired++] = fd;
}

TestSuite(readtimer, .timeout = 10);

Test(readtimer, expires_at_the_limit_not_before)
{
    struct tg_readtimer t;
    struct tg_readtimer_entry e;

    tg_readtimer_init(&t, 1000);
    tg_readtimer_entry_init(&e, 7);
    n_fired = 0;
    tg_readtimer_start(&t, &e, 5000);
    cr_assert(eq(sz, tg_readtimer_expire(&t, 5999, on_expired, NULL), 0));
    cr_assert(eq(u64, tg_readtimer_next_us(&t, 5999), 1));
    cr_assert(eq(sz, tg_readtimer_expire(&t, 6000, on_expired, NULL), 1));
    cr_assert(eq(int, fired[0], 7));
    cr_assert(tg_readtimer_is_empty(&t));
    cr_assert(eq(u64, tg_readtimer_next_us(&t, 6000), UINT64_MAX));
}

Test(readtimer, stopped_entry_never_fires)
{
    struct tg_readtimer t;
    struct tg_readtimer_entry a, b;

    tg_readtimer_init(&t, 10);
    tg_readtimer_entry_init(&a, 1);
    tg_readtimer_entry_init(&b, 2);
    n_fired = 0;
    tg_readtimer_start(&t, &a, 0);
    tg_readtimer_start(&t, &b, 0);
    tg_readtimer_stop(&t, &a);
    tg_readtimer_stop(&t, &a); /* idempotent */
    cr_assert(eq(sz, tg_readtimer_expire(&t, 100, on_expired, NULL), 1));
    cr_assert(eq(int, fired[0], 2));
}

Test(readtimer, restart_moves_to_the_tail)
{
    struct tg_readtimer t;
    struct tg_readtimer_entry a, b;

    tg_readtimer_init(&t, 100);
    tg_readtimer_entry_init(&a, 1);
    tg_readtimer_entry_init(&b, 2);
    n_fired = 0;
    tg_readtimer_start(&t, &a, 0);
    tg_readtimer_start(&t, &b, 50);
    tg_readtimer_start(&t, &a, 80);              /* a answered a request and waits again */
    cr_assert(eq(ptr, t.entries.next, &b.link)); /* b is the oldest now */
    cr_assert(eq(sz, tg_readtimer_expire(&t, 150, on_expired, NULL), 1));
    cr_assert(eq(int, fired[0], 2));
    cr_assert(eq(sz, tg_readtimer_expire(&t, 179, on_expired, NULL), 0));
    cr_assert(eq(sz, tg_readtimer_expire(&t, 180, on_expired, NULL), 1));
    cr_assert(eq(int, fired[1], 1));
}
