#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/suggest.h"

TestSuite(suggest, .timeout = 10);

static const char *const keys[] = {"listen",   "workers",   "timeout_ms",
                                   "upstream", "upstreams", NULL};

Test(suggest, typos_get_the_closest_word)
{
    cr_assert(eq(str, (char *)tg_suggest("listn", keys, 0), "listen"));
    cr_assert(eq(str, (char *)tg_suggest("wrokers", keys, 0), "workers")); /* a swap: one edit */
    cr_assert(eq(str, (char *)tg_suggest("Timeout_MS", keys, 0), "timeout_ms"));
    cr_assert(eq(str, (char *)tg_suggest("upstrem", keys, 0), "upstream"));
}

Test(suggest, far_words_and_the_word_itself_get_none)
{
    cr_assert(zero(ptr, (void *)tg_suggest("routes", keys, 0)));
    cr_assert(zero(ptr, (void *)tg_suggest("listen", keys, 0)));
    cr_assert(zero(ptr, (void *)tg_suggest("c", (const char *const[]){"a", NULL}, 0)));
    /* Up to 4 characters, one edit. */
    cr_assert(zero(ptr, (void *)tg_suggest("ab", (const char *const[]){"abcd", NULL}, 0)));
    cr_assert(eq(str, (char *)tg_suggest("abd", (const char *const[]){"abcd", NULL}, 0), "abcd"));
}

Test(suggest, a_counted_list)
{
    const char *names[] = {"patient", "history"};

    cr_assert(eq(str, (char *)tg_suggest("patinet", names, 2), "patient"));
    cr_assert(zero(ptr, (void *)tg_suggest("questionnaire", names, 2)));
}
