#ifndef TG_ROUTES_TABLE_INTERNAL_H
#define TG_ROUTES_TABLE_INTERNAL_H

/* Private to routes/: the route table's layout, shared by table.c (which builds it from the
 * conf), match.c (which searches it) and conf_check.c (the checks loaders share). Not included
 * outside routes/. */

#include <stdbool.h>
#include <stddef.h>

struct tg_route;
struct tg_seg;

struct tg_route_table {
    struct tg_route *routes; /* owned array */
    size_t n;
};

/* True when s (n bytes) is a parameter name: [A-Za-z_][A-Za-z0-9_]*. */
bool tg_route_is_param_name(const char *s, size_t n);

/* Index of the first byte of s (n bytes) that is not an RFC 3986 pchar (or '/' when slash), a
 * '%' counting only with two hex digits after it; n when all are fine. */
size_t tg_route_bad_char(const char *s, size_t n, bool slash);

/* The parameter segment of r named name (n bytes), or NULL. */
const struct tg_seg *tg_route_find_param(const struct tg_route *r, const char *name, size_t n);

#endif
