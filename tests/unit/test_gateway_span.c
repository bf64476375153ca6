#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/span.h"

TestSuite(span, .timeout = 10);

Test(span, ring_keeps_order_and_drops_when_full)
{
    struct tg_span_ring *r = tg_span_ring_new(16, -1, 4);
    struct tg_span out[32];

    cr_assert(eq(sz, r->cap, 16));
    for (int i = 0; i < 16; i++) {
        struct tg_span *s = tg_span_ring_reserve(r);
        cr_assert(not(zero(ptr, s)));
        s->status = i;
        tg_span_ring_commit(r);
    }
    cr_assert(zero(ptr, tg_span_ring_reserve(r)));
    cr_assert(eq(u64, atomic_load(&r->dropped), 1));
    cr_assert(eq(sz, tg_span_ring_count(r), 16));
    cr_assert(eq(sz, tg_span_ring_pop(r, out, 5), 5));
    cr_assert(eq(int, out[0].status, 0));
    cr_assert(eq(int, out[4].status, 4));
    /* Room again, and the order holds across the wrap. */
    for (int i = 16; i < 21; i++) {
        tg_span_ring_reserve(r)->status = i;
        tg_span_ring_commit(r);
    }
    cr_assert(eq(sz, tg_span_ring_pop(r, out, 32), 16));
    cr_assert(eq(int, out[0].status, 5));
    cr_assert(eq(int, out[15].status, 20));
    free(r);
}

Test(span, sizes_round_up_to_a_power_of_two)
{
    struct tg_span_ring *r = tg_span_ring_new(100, -1, 1);

    cr_assert(eq(sz, r->cap, 128));
    free(r);
}

Test(span, copy_cuts_to_the_field)
{
    char f[4];

    tg_span_copy(f, sizeof(f), "abcdef");
    cr_assert(eq(str, f, "abc"));
    tg_span_copy(f, sizeof(f), NULL);
    cr_assert(eq(str, f, ""));
}
