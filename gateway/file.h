#ifndef TG_GATEWAY_FILE_H
#define TG_GATEWAY_FILE_H

#include <stddef.h>

/* Reads the whole file at path (at most max bytes) into a NUL-terminated malloc'd *text of
 * *len bytes. TG_OK; TG_EINVAL with "PATH: why" in err when it cannot be opened, read or is too
 * large; TG_ENOMEM. Any thread. */
int tg_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen);

#endif
