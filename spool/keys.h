#ifndef TG_SPOOL_KEYS_H
#define TG_SPOOL_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/err.h"

struct tg_seal_keys;

/* Loads the spool's keys into out: key_file first (it seals), then each of old (n_old files: they
 * only open what was sealed before a rotation). A key file is a regular file that neither group
 * nor others may read, write or run (mode & 077 == 0), holding 32 raw bytes or 64 hex digits.
 * When key_file does not exist and create is true (a spool that does not exist yet), a new
 * random key is written there first (mode 0600, never over an existing file). Returns TG_OK, or
 * TG_EINVAL with "FILE: why" in err; out is left empty on failure. Main thread, before the
 * spool starts. */
int tg_spool_keys_load(const char *key_file, const char *const *old, size_t n_old, bool create,
                       struct tg_seal_keys *out, char *err, size_t errlen) TG_MUST_CHECK;

#endif
