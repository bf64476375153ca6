#ifndef TG_TESTS_SUPPORT_CONF_TEMPLATE_H
#define TG_TESTS_SUPPORT_CONF_TEMPLATE_H

#include <stdarg.h>
#include <stddef.h>

/* Writes text to a new temporary conf file; path receives its name (cap >= 64). 0 or -1. */
int conf_write(char *path, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Same with a va_list. */
int conf_vwrite(char *path, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
