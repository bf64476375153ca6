#ifndef TG_GATEWAY_SUGGEST_H
#define TG_GATEWAY_SUGGEST_H

#include <stddef.h>

/* "Did you mean": the candidate closest to word by edit distance (insertions, deletions,
 * substitutions and swaps of neighbours, ignoring case), when it is close enough to be a typo
 * of it (at most 1 edit for words of up to 4 characters, 2 up to 8, 3 beyond, and fewer edits
 * than word has characters); NULL otherwise, and for word itself. candidates: n strings, or
 * NULL-terminated when n is 0. Any thread. */
const char *tg_suggest(const char *word, const char *const *candidates, size_t n);

#endif
