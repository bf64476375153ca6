#include "tests/support/unit/tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

static char dir[128];

const char *tmpdir_make(const char *tag)
{
    snprintf(dir, sizeof(dir), "/tmp/tg-unit-%s-XXXXXX", tag);
    cr_assert(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    return dir;
}

const char *tmpdir_path(const char *name)
{
    static char paths[4][256];
    static unsigned turn;
    char *p = paths[turn++ % 4];

    snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
    return p;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tmpdir_remove(void)
{
    if (dir[0] != '\0') {
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}
