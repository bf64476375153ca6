#ifndef TG_GATEWAY_DIGEST_H
#define TG_GATEWAY_DIGEST_H

#include <stddef.h>

#include "gateway/err.h"

#define TG_SHA256_HEX_LEN 64

/* Writes the SHA-256 of p[0..n) as 64 lower-case hex digits and a NUL into out (the same text
 * sha256sum prints, so an operator can tell which file is loaded). TG_OK or TG_EINTERNAL. Any
 * thread. The only OpenSSL user. */
int tg_sha256_hex(const void *p, size_t n, char out[TG_SHA256_HEX_LEN + 1]) TG_MUST_CHECK;

/* The OpenSSL loaded ("OpenSSL 3.0.17 1 Jul 2025"). Any thread. */
const char *tg_digest_lib_version(void);

#endif
