#ifndef TG_TESTS_SUPPORT_READ_FILE_H
#define TG_TESTS_SUPPORT_READ_FILE_H

/* The whole file at path as a malloc'd NUL-terminated string (caller frees; the file may hold
 * NULs of its own), or NULL when it cannot be opened or memory runs out. Any thread. */
char *read_file(const char *path);

#endif
