/* A record's metadata as JSON (spool/meta.h). */
#include "spool/meta.h"

#include "spool/spool.h"
#include "spool/store.h"

/* RFC 3339 UTC with milliseconds, or null for 0. */
static json_t *time_of(int64_t ms)
{
    char buf[40];

    if (ms <= 0) {
        return json_null();
    }
    tg_spool_time(ms, buf, sizeof(buf));
    return json_string(buf);
}

json_t *tg_spool_meta_json(const struct tg_spool_meta *m, bool operator)
{
    json_t *o = json_object();
    int bad = o == NULL;

    bad = bad || json_object_set_new(o, "submission_id", json_string(m->id)) != 0;
    bad = bad || json_object_set_new(o, "route", json_string(m->route)) != 0;
    bad = bad || json_object_set_new(o, "state", json_string(tg_spool_state_name(m->state))) != 0;
    bad = bad || json_object_set_new(o, "attempts", json_integer(m->attempts)) != 0;
    bad = bad || json_object_set_new(o, "created_at", time_of(m->created_ms)) != 0;
    bad = bad || json_object_set_new(o, "updated_at", time_of(m->updated_ms)) != 0;
    bad =
        bad || json_object_set_new(o, "next_attempt_at",
                                   m->state == TG_SPOOL_QUEUED && m->next_ms != TG_SPOOL_BLOCKED_MS
                                       ? time_of(m->next_ms)
                                       : json_null()) != 0;
    bad = bad || json_object_set_new(o, "delivered_at", time_of(m->delivered_ms)) != 0;
    bad = bad || json_object_set_new(o, "upstream_status",
                                     m->upstream_status > 0 ? json_integer(m->upstream_status)
                                                            : json_null()) != 0;
    bad = bad || json_object_set_new(o, "trace_id", json_string(m->trace_id)) != 0;
    if (operator) {
        bad = bad || json_object_set_new(o, "key", json_string(m->key)) != 0;
        bad = bad || json_object_set_new(o, "reason", json_string(m->reason)) != 0;
        bad = bad || json_object_set_new(o, "first_answer",
                                         m->answer_status > 0 ? json_integer(m->answer_status)
                                                              : json_null()) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
