#ifndef TG_GATEWAY_DIGITS_H
#define TG_GATEWAY_DIGITS_H

#include <stddef.h>
#include <stdint.h>

/* Numbers as text on the per-request path, where printf's format parsing would cost several
 * times the work (an access log line, an upstream header, a peer address). */

#define TG_U64_DIGITS 20 /* the most decimal digits a uint64_t takes */

/* Writes the decimal digits of v so that they end just before end; returns where they start. */
char *tg_u64_digits_before(uint64_t v, char *end);

/* Writes the decimal digits of v and a NUL at out (room for TG_U64_DIGITS + 1); returns how
 * many digits. */
size_t tg_u64_dec(uint64_t v, char *out);

#endif
