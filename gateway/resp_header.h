#ifndef TG_GATEWAY_RESP_HEADER_H
#define TG_GATEWAY_RESP_HEADER_H

/* One line of an upstream's answer head, as libcurl hands it over, into the headers of a
 * tg_resp: "Name: value" kept (the value trimmed), a new status line (after a 1xx) drops what
 * was kept, blank lines and obsolete line folding are ignored, and a line whose name is not a
 * token or whose value holds a control character (NUL, CR, LF...; HTAB is fine) is dropped. */

#include <stddef.h>

struct tg_resp;

/* Takes line (n bytes, CRLF included or not). TG_OK, or TG_ENOMEM. Any thread. */
int tg_resp_header_line(struct tg_resp *rh, const char *line, size_t n);

#endif
