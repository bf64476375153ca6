#include "routes/registry.h"

#include <stddef.h>

/* Every handler, one line each: a new route kind is its file under routes/ plus a line here.
 * A route selects one by its key (tg_handler_<name>.key). */
#define TG_HANDLERS(X) \
    X(proxy)           \
    X(fanout)          \
    X(local)           \
    X(return )         \
    X(submission)

#define DECLARE(name) extern const struct tg_handler_ops tg_handler_##name;
#define ENTRY(name)   &tg_handler_##name,

TG_HANDLERS(DECLARE)

const struct tg_handler_ops *const tg_handlers[] = {TG_HANDLERS(ENTRY) NULL};
