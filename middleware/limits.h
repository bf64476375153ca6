#ifndef TG_MIDDLEWARE_LIMITS_H
#define TG_MIDDLEWARE_LIMITS_H

#include "middleware/chain.h"

/* Rejects requests whose framing or target is ambiguous or unsafe to forward (RFC 9112
 * section 6 and request smuggling): field names that are not tokens, control characters in
 * field values, Transfer-Encoding with Content-Length or in HTTP/1.0, any Transfer-Encoding
 * but a lone "chunked", repeated or malformed Content-Length, missing, repeated or invalid
 * Host, dot segments. Rewrites an absolute-form target to origin-form. */
extern const struct tg_mw_ops tg_mw_limits;

/* The checks alone, for unit tests: TG_OK, TG_EINVAL (400), or TG_ENOTIMPL (501: a transfer
 * coding before chunked) with req->err_detail set to a static reason. Reads req->version,
 * hdrs and target; may rewrite req->target, target_len and path_len. */
int tg_limits_check(struct tg_req *req);

#endif
