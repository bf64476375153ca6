#ifndef TG_MIDDLEWARE_VALIDATE_H
#define TG_MIDDLEWARE_VALIDATE_H

#include "middleware/chain.h"

/* Headers phase, after trace: rejects requests whose framing or target is ambiguous or unsafe to
 * forward (RFC 9112 section 6 and request smuggling): field names that are not tokens, control
 * characters in field values, Transfer-Encoding with Content-Length or in HTTP/1.0, any
 * Transfer-Encoding but a lone "chunked", repeated or malformed Content-Length, missing, repeated
 * or invalid Host, dot segments, more than TG_REQ_HEADERS_MAX header fields (431). Rewrites an
 * absolute-form target to origin-form. */
extern const struct tg_mw_ops tg_mw_validate; /* on_headers: TG_MW_NEXT, TG_EINVAL (400),
                                               * TG_ENOTIMPL (501: a transfer coding before
                                               * chunked) or TG_EHEADERS (431), with
                                               * req->end.detail set to a static reason */

#endif
