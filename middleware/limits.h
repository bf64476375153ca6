#ifndef TG_MIDDLEWARE_LIMITS_H
#define TG_MIDDLEWARE_LIMITS_H

#include "middleware/chain.h"

/* Rejects requests whose framing or target is ambiguous or unsafe to forward (RFC 9112
 * section 6 and request smuggling): Transfer-Encoding with Content-Length, repeated or
 * malformed Content-Length, unknown transfer codings, missing or repeated Host, dot segments.
 * Rewrites an absolute-form target to origin-form. */
extern const struct tg_mw_ops tg_mw_limits;

/* The checks alone, for unit tests: TG_OK, TG_EINVAL or TG_ENOTIMPL with req->err_detail set. */
int tg_limits_check(struct tg_req *req);

#endif
