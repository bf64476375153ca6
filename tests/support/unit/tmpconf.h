#ifndef TG_TESTS_SUPPORT_UNIT_TMPCONF_H
#define TG_TESTS_SUPPORT_UNIT_TMPCONF_H

#include <stddef.h>

/* One temporary conf file at a time for unit tests: tmpconf_write removes the previous one,
 * writes text to a new "$TMPDIR/tg-unit-<tag>-XXXXXX.json" and returns its name (static
 * storage). tmpconf_remove (a suite's .fini) deletes it. Failures abort the test. */
const char *tmpconf_write(const char *tag, const char *text);
void tmpconf_remove(void);

/* The file tmpconf_write made last. */
const char *tmpconf_path(void);

#endif
