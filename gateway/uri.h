#ifndef TG_GATEWAY_URI_H
#define TG_GATEWAY_URI_H

#include <stdbool.h>
#include <stddef.h>

/* True when a segment of path (len bytes; the path alone, without query or fragment) is "." or
 * "..", each dot also spelled "%2e" or "%2E": a segment that a server resolving the path (RFC
 * 3986 5.2.4) would remove or climb out with, so that "/api/../admin" could match a prefix
 * route and then reach another path upstream. Segments are the runs between '/' bytes; empty
 * segments, "...", ".a" and "a." are not dot segments. Does not allocate; any thread. */
bool tg_path_has_dot_segment(const char *path, size_t len);

#endif
