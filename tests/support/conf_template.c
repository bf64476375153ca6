#include "tests/support/conf_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int conf_vwrite(char *path, size_t cap, const char *fmt, va_list ap)
{
    FILE *f;
    int fd;

    snprintf(path, cap, "/tmp/tg-conf-XXXXXX.json");
    fd = mkstemps(path, 5);
    if (fd == -1) {
        return -1;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    vfprintf(f, fmt, ap);
    fclose(f);
    return 0;
}

int conf_write(char *path, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = conf_vwrite(path, cap, fmt, ap);
    va_end(ap);
    return rc;
}
