#ifndef TG_GATEWAY_BUF_H
#define TG_GATEWAY_BUF_H

#include <stddef.h>

#include "gateway/err.h"

/* The one growable buffer of the house (curl's dynbuf): bytes that grow by doubling, always
 * followed by a NUL that len does not count, and a limit of their own. Zeroed storage is an
 * empty buffer without a limit. Not thread-safe; owned by whoever embeds it. */
struct tg_buf {
    char *data; /* owned; NULL while empty */
    size_t len;
    size_t cap;
    size_t limit; /* most bytes it may hold; 0 = no limit */
};

/* Appends n bytes of p. TG_OK; TG_ETOOBIG when len would pass the limit, TG_ENOMEM when out of
 * memory (in both cases nothing changed). */
int tg_buf_append(struct tg_buf *b, const void *p, size_t n) TG_MUST_CHECK;

/* Hands the bytes over: returns data (malloc'd, NUL-terminated, or NULL when empty), *len gets
 * their length, and b is empty again (its limit stays). */
char *tg_buf_steal(struct tg_buf *b, size_t *len);

/* Frees the bytes; the limit stays. Idempotent. */
void tg_buf_cleanup(struct tg_buf *b);

#endif
