#ifndef TG_ROUTES_MERGE_H
#define TG_ROUTES_MERGE_H

#include <stdbool.h>
#include <stddef.h>

/* The pure half of the fan-out handler (routes/fanout.c): judging one backend's answer and
 * merging the answers into one JSON object.
 * No sockets, no request: unit-tested in tests/unit/test_routes_fanout.c. Any thread. */

#define TG_MERGE_ERRORS_KEY "_errors"

/* One backend's outcome. Zero it, set name and required, then tg_merge_part_set() once. */
struct tg_merge_part {
    const char *name; /* borrowed: backend name, [A-Za-z0-9_-] (routes/table.c checks) */
    bool required;
    bool settled;      /* tg_merge_part_set ran */
    int err;           /* TG_OK: body holds valid JSON; else why it failed (enum tg_err) */
    int status;        /* the backend's HTTP status, 0 when no answer arrived */
    const char *cause; /* failure in a few words ("status 500", "timeout"), NULL on success;
                        * points into cause_buf */
    char cause_buf[64];
    char *body;      /* owned: the answer as received, on success only */
    size_t json_off; /* the JSON value inside body, outer whitespace left out */
    size_t json_len;
};

/* Records a backend call's outcome in p (steals body, malloc'd or NULL). err is the call's
 * result (TG_OK when an answer arrived), status its HTTP status, detail the transport's reason
 * ("connect refused"; may be NULL), deadline true when the request's budget, not the backend's
 * own timeout, limited the call. Success needs err TG_OK, a 2xx status and a body that is one
 * valid JSON value (any type, UTF-8). Failures set p->cause and p->err: TG_ETIMEDOUT for a
 * timeout ("timeout", or "route deadline" when deadline), TG_EUPSTREAM for a non-2xx status
 * ("status 500"), a body that is not JSON ("invalid json") or over its cap ("answer too large")
 * and transport failures (detail), TG_ECANCELED when cancelled, any other err as it is.
 * Returns p->err. */
int tg_merge_part_set(struct tg_merge_part *p, int err, int status, char *body, size_t len,
                      const char *detail, bool deadline);

/* Frees what p owns and zeroes it. */
void tg_merge_part_cleanup(struct tg_merge_part *p);

/* Builds the merged answer: one object with a member per part, in order, holding the backend's
 * JSON exactly as it sent it (bytes untouched: numbers, key order and text survive), or null
 * for a failed or unsettled part, which also gets an entry {"error": cause, "status": status or
 * null} under "_errors" (last member, only when there are failures). On TG_OK *out gets the
 * malloc'd NUL-terminated text, *len its length (never above max) and *complete whether every
 * part succeeded. Returns TG_OK, TG_ETOOBIG when the text would exceed max bytes (nothing is
 * allocated) or TG_ENOMEM. */
int tg_merge_build(const struct tg_merge_part *parts, size_t n, size_t max, char **out, size_t *len,
                   bool *complete);

#endif
