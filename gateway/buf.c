#include "gateway/buf.h"

#include <stdlib.h>
#include <string.h>

#define BUF_FIRST 512

int tg_buf_append(struct tg_buf *b, const void *p, size_t n)
{
    if (b->limit > 0 && n > b->limit - b->len) {
        return TG_ETOOBIG;
    }
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap == 0 ? BUF_FIRST : b->cap;
        char *d;
        while (c < b->len + n + 1) {
            c *= 2;
        }
        d = realloc(b->data, c);
        if (d == NULL) {
            return TG_ENOMEM;
        }
        b->data = d;
        b->cap = c;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return TG_OK;
}

char *tg_buf_steal(struct tg_buf *b, size_t *len)
{
    char *d = b->data;

    *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void tg_buf_cleanup(struct tg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
