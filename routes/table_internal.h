#ifndef TG_ROUTES_TABLE_INTERNAL_H
#define TG_ROUTES_TABLE_INTERNAL_H

/* Private to routes/: the route table's layout, shared by table.c (which builds it from the
 * conf) and match.c (which searches it). Not included outside routes/. */

#include <stddef.h>

struct tg_route;

struct tg_route_table {
    struct tg_route *routes; /* owned array */
    size_t n;
};

#endif
