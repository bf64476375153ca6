#ifndef TG_MIDDLEWARE_DEADLINE_H
#define TG_MIDDLEWARE_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "middleware/chain.h"

/* Request phase: sets req->deadline_us from req->policy: the route's total budget from the
 * moment the request arrived, or a smaller budget the client asked for where the route allows
 * it. 408 when the client used the whole budget sending its request. */
extern const struct tg_mw_ops tg_mw_deadline;

/* X-Request-Timeout-Ms: 1..9 digits, not zero. true and *ms on success. */
bool tg_deadline_parse_ms(const char *v, size_t len, uint64_t *ms);

/* grpc-timeout: 1..8 digits and a unit H M S m u n; rounded up to whole milliseconds. */
bool tg_deadline_parse_grpc(const char *v, size_t len, uint64_t *ms);

#endif
