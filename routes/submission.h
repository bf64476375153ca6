#ifndef TG_ROUTES_SUBMISSION_H
#define TG_ROUTES_SUBMISSION_H

#include "gateway/handler.h"

/* The status route of a durable route: GET /submissions/{id} answers what became of a
 * submission (state, attempts, times, the backend's status, the trace id), never a field of the
 * submission itself. Selected by "submissions": "<durable route name>"; the durable route's 202
 * answers point here (Location). */
struct tg_submission_conf {
    char *route; /* owned: the name of the durable route whose records it shows */
};

extern const struct tg_handler_ops tg_handler_submission;

#endif
