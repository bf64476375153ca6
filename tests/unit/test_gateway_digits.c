#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/digits.h"

Test(digits, dec_matches_printf_at_the_edges)
{
    const uint64_t cases[] = {0, 9, 10, 99, 100, 4294967295u, 18446744073709551615u};
    char want[32];
    char got[TG_U64_DIGITS + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n;

        snprintf(want, sizeof(want), "%llu", (unsigned long long)cases[i]);
        memset(got, 'x', sizeof(got));
        n = tg_u64_dec(cases[i], got);
        cr_assert(eq(str, got, want));
        cr_assert(eq(sz, n, strlen(want)));
    }
}

Test(digits, digits_before_writes_only_before_end)
{
    char buf[8] = "abcdefg";
    char *p = tg_u64_digits_before(42, buf + 7);

    cr_assert(eq(ptr, p, buf + 5));
    cr_assert(eq(str, buf, "abcde42"));
}
