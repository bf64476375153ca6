#ifndef TG_ROUTES_HANDLER_H
#define TG_ROUTES_HANDLER_H

#include "auth/issuer.h"
#include "gateway/handler.h"
#include "gateway/req.h"

struct tg_conf;

/* What the handlers that call upstreams share (routes/headers.c): which client headers an
 * upstream call passes on. */

/* True for hop-by-hop headers (RFC 9110 7.6.1), which a proxy never forwards, in either
 * direction, plus the names listed in connection (the Connection header's value, may be NULL). */
bool tg_header_is_hop_by_hop(const char *name, size_t len, const char *connection,
                             size_t connection_len);

/* Whether an upstream's answer header passes on to the client: not hop-by-hop (connection is the
 * upstream's Connection value, may be NULL), not framing (Content-Length), not what the gateway
 * sets itself (Date, traceparent, the trace header of conf). */
bool tg_header_passes_back(const struct tg_conf *conf, const char *name, size_t len,
                           const char *connection, size_t connection_len);

/* The longest upstream URL a handler builds (origin, base path, path and query). */
#define TG_URL_MAX 16384

/* Room tg_header_forward needs: every client header, the claim headers auth adds to them
 * (claims_to_headers), and the three X-Forwarded-* lines. */
#define TG_HEADER_FORWARD_MAX (TG_REQ_HEADERS_MAX + TG_AUTH_CLAIM_HEADERS_MAX + 3)
#define TG_XFF_MAX            1024

/* Fills out (room for TG_HEADER_FORWARD_MAX) with the client headers an upstream call passes
 * on: all but hop-by-hop ones and those the gateway sets itself (Host, Content-Length, Expect,
 * trace context, budget, X-Forwarded-*), then X-Forwarded-For (written into xff, TG_XFF_MAX
 * bytes: the incoming chain plus the peer when the peer is a trusted proxy, else the peer
 * alone), X-Forwarded-Proto and X-Forwarded-Host.
 * Strings are borrowed from req and xff. Returns how many it wrote. Loop thread. */
size_t tg_header_forward(const struct tg_req *req, struct tg_kv *out, char *xff);

#endif
