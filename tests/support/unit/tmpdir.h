#ifndef TG_TESTS_SUPPORT_UNIT_TMPDIR_H
#define TG_TESTS_SUPPORT_UNIT_TMPDIR_H

#include <stddef.h>

/* A temporary directory for one unit test (spool files, key files): tmpdir_make creates
 * "/tmp/tg-unit-<tag>-XXXXXX" and returns its name (static storage, one at a time); tmpdir_path
 * joins a file name to it (one of four rotating static buffers); tmpdir_remove (a suite's .fini)
 * deletes it with everything in it. Failures abort the test. */
const char *tmpdir_make(const char *tag);
const char *tmpdir_path(const char *name);
void tmpdir_remove(void);

#endif
