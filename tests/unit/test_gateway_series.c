#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/series.h"

static struct tg_series_table *t;

static void setup(void)
{
    t = calloc(1, sizeof(*t));
}

static void teardown(void)
{
    tg_series_cleanup(t);
    free(t);
}

TestSuite(series, .init = setup, .fini = teardown, .timeout = 10);

Test(series, same_labels_give_the_same_series)
{
    const char *a[] = {"route", "GET"};
    char copy[] = "route";
    const char *b[] = {copy, "GET"};
    struct tg_series *s = tg_series_get(t, 1, a, 2, 1);

    cr_assert(not(zero(ptr, s)));
    cr_assert(eq(ptr, tg_series_get(t, 1, b, 2, 1), s));
    /* The labels were copied: the caller's strings may go. */
    copy[0] = 'X';
    cr_assert(eq(str, (char *)s->labels[0], "route"));
}

Test(series, family_and_every_label_tell_series_apart)
{
    const char *a[] = {"ab", "c"};
    const char *b[] = {"a", "bc"};
    struct tg_series *s = tg_series_get(t, 1, a, 2, 1);

    cr_assert(not(eq(ptr, tg_series_get(t, 1, b, 2, 1), s)));
    cr_assert(not(eq(ptr, tg_series_get(t, 2, a, 2, 1), s)));
}

Test(series, values_add_up_and_start_at_zero)
{
    const char *a[] = {"x"};
    struct tg_series *s = tg_series_get(t, 0, a, 1, 3);

    cr_assert(eq(u64, atomic_load(&s->values[2]), 0));
    tg_series_add(s, 2, 5);
    tg_series_add(s, 2, 7);
    cr_assert(eq(u64, atomic_load(&s->values[2]), 12));
    cr_assert(eq(u64, atomic_load(&s->values[0]), 0));
}

Test(series, a_full_table_refuses_and_counts)
{
    char name[16];
    const char *l[] = {name};

    for (int i = 0; i < TG_SERIES_SLOTS; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        cr_assert(not(zero(ptr, tg_series_get(t, 0, l, 1, 1))), "slot %d", i);
    }
    cr_assert(eq(u64, atomic_load(&t->overflow), 0));
    snprintf(name, sizeof(name), "one-more");
    cr_assert(zero(ptr, tg_series_get(t, 0, l, 1, 1)));
    cr_assert(eq(u64, atomic_load(&t->overflow), 1));
    /* Those already there are still found. */
    snprintf(name, sizeof(name), "s7");
    cr_assert(not(zero(ptr, tg_series_get(t, 0, l, 1, 1))));
}

Test(series, readers_see_what_was_published)
{
    const char *a[] = {"x"};
    struct tg_series *s = tg_series_get(t, 3, a, 1, 1);
    size_t found = 0;

    for (size_t i = 0; i < TG_SERIES_SLOTS; i++) {
        if (tg_series_at(t, i) == s) {
            found++;
        }
    }
    cr_assert(eq(sz, found, 1));
}
