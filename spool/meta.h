#ifndef TG_SPOOL_META_H
#define TG_SPOOL_META_H

#include <stdbool.h>

#include <jansson.h>

struct tg_spool_meta;

/* A record's metadata as JSON, the one shape the status resource and the operator CLI show:
 * submission_id, route, state, attempts, created_at, updated_at, next_attempt_at, delivered_at,
 * upstream_status, trace_id; with operator also key, reason and first_answer. Never a field of
 * the submission: the spool does not hold one in the clear. A new reference, NULL when out of
 * memory. Any thread. */
json_t *tg_spool_meta_json(const struct tg_spool_meta *m, bool operator);

#endif
