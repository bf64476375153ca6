#include "gateway/digits.h"

#include <string.h>

char *tg_u64_digits_before(uint64_t v, char *end)
{
    char *p = end;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

size_t tg_u64_dec(uint64_t v, char *out)
{
    char tmp[TG_U64_DIGITS];
    char *p = tg_u64_digits_before(v, tmp + sizeof(tmp));
    size_t n = (size_t)(tmp + sizeof(tmp) - p);

    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}
