#include "gateway/suggest.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define WORD_MAX 64 /* longer words get no suggestion */

static int lower(char c)
{
    return tolower((unsigned char)c);
}

static size_t min_of(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a
 * substring), case-insensitive, or WORD_MAX + 1 when either word is too long. */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    size_t d[WORD_MAX + 1][WORD_MAX + 1];

    if (n > WORD_MAX || m > WORD_MAX) {
        return WORD_MAX + 1;
    }
    for (size_t i = 0; i <= n; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= m; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t best = min_of(d[i - 1][j - 1] + (lower(a[i - 1]) != lower(b[j - 1])),
                                 min_of(d[i - 1][j], d[i][j - 1]) + 1);
            bool swapped = i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                           lower(a[i - 2]) == lower(b[j - 1]);
            d[i][j] = swapped ? min_of(best, d[i - 2][j - 2] + 1) : best;
        }
    }
    return d[n][m];
}

const char *tg_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t len = strlen(word);
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;

    for (size_t i = 0; n > 0 ? i < n : candidates[i] != NULL; i++) {
        size_t d = distance(word, candidates[i]);
        /* d < len: a word every letter of which is wrong is no typo ("c" for "a"); case alone
         * is a typo too ("Timeout_MS"). */
        if (strcmp(word, candidates[i]) != 0 && d < best_d && d < len) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
