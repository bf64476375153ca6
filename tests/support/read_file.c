#include "tests/support/read_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    char chunk[8192];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        char *p = realloc(buf, len + n + 1);
        if (p == NULL) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = p;
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) {
        return calloc(1, 1);
    }
    buf[len] = '\0';
    return buf;
}
