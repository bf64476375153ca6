/* An upstream answer's header lines into a tg_resp. */
#include "gateway/resp_header.h"

#include <stdbool.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/req.h"

static size_t trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return n;
}

/* A field line a client could be handed as it is: a token for a name, no control character
 * but HTAB in the value. A NUL would also split the "name\0value\0" pairs of a tg_resp and
 * let a reader run past the buffer (found by tests/fuzz/fuzz_resp_header.c). */
static bool is_clean(const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0) {
        return false;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!tg_http_is_tchar((unsigned char)name[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

int tg_resp_header_line(struct tg_resp *rh, const char *line, size_t n)
{
    size_t len = trim_len(line, n);
    const char *colon;
    size_t name_len, off;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new status line: headers of an interim 1xx answer are dropped. */
        rh->hdrs.len = 0;
        return TG_OK;
    }
    colon = memchr(line, ':', len);
    if (len == 0 || colon == NULL || line[0] == ' ' || line[0] == '\t') {
        return TG_OK; /* blank line, or obsolete line folding: ignored */
    }
    name_len = (size_t)(colon - line);
    off = name_len + 1;
    while (off < len && (line[off] == ' ' || line[off] == '\t')) {
        off++;
    }
    if (!is_clean(line, name_len, line + off, len - off)) {
        return TG_OK; /* dropped: never passed on to the client */
    }
    return tg_resp_add_headern(rh, line, name_len, line + off, len - off) == TG_OK ? TG_OK
                                                                                   : TG_ENOMEM;
}
