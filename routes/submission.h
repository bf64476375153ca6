#ifndef TG_ROUTES_SUBMISSION_H
#define TG_ROUTES_SUBMISSION_H

#include "gateway/err.h"
#include "gateway/handler.h"

/* The status route of a durable route: GET /submissions/{id} answers what became of a
 * submission (state, attempts, times, the backend's status, the trace id), never a field of the
 * submission itself. Selected by "submissions": "<durable route name>"; the durable route's 202
 * answers point here (Location). */
struct tg_submission_conf {
    char *route; /* owned: the name of the durable route whose records it shows */
};

extern const struct tg_handler_ops tg_handler_submission;

struct tg_spool_meta;

/* Sets req->resp to m's status document (200, JSON, not to be cached): the status route's
 * answer, and a durable retry's once the first answer expired. TG_OK or TG_ENOMEM. */
int tg_submission_answer(struct tg_req *req, const struct tg_spool_meta *m) TG_MUST_CHECK;

#endif
