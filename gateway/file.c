#include "gateway/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway/buf.h"
#include "gateway/err.h"

int tg_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen)
{
    char ebuf[128];
    char chunk[16384];
    FILE *f = fopen(path, "rb");
    struct tg_buf b = {.limit = max};
    size_t got;
    int rc = TG_OK;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror_r(errno, ebuf, sizeof(ebuf)));
        return TG_EINVAL;
    }
    while (rc == TG_OK && (got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = tg_buf_append(&b, chunk, got);
    }
    if (rc == TG_ETOOBIG) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        rc = TG_EINVAL;
    } else if (rc == TG_OK && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = TG_EINVAL;
    } else if (rc == TG_OK && b.data == NULL) {
        rc = tg_buf_append(&b, "", 0); /* an empty file is an empty string */
    }
    if (rc == TG_OK) {
        *text = tg_buf_steal(&b, len);
    }
    tg_buf_cleanup(&b);
    fclose(f);
    return rc;
}
