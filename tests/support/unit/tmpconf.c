#include "tests/support/unit/tmpconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

static char tmp_file[512];

void tmpconf_remove(void)
{
    if (tmp_file[0] != '\0') {
        unlink(tmp_file);
        tmp_file[0] = '\0';
    }
}

const char *tmpconf_write(const char *tag, const char *text)
{
    const char *dir = getenv("TMPDIR");
    size_t len = strlen(text);
    int fd;

    tmpconf_remove();
    snprintf(tmp_file, sizeof(tmp_file), "%s/tg-unit-%s-XXXXXX.json",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp", tag);
    fd = mkstemps(tmp_file, 5);
    cr_assert(fd >= 0, "mkstemps %s", tmp_file);
    cr_assert((size_t)write(fd, text, len) == len, "short write to %s", tmp_file);
    close(fd);
    return tmp_file;
}

const char *tmpconf_path(void)
{
    return tmp_file;
}
