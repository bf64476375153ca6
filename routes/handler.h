#ifndef TG_ROUTES_HANDLER_H
#define TG_ROUTES_HANDLER_H

#include "gateway/req.h"

/* What answers a route. serve() runs once the body is complete and req->route, req->match and
 * req->deadline_us are set; it returns TG_MW_DONE (req->resp ready), TG_MW_ASYNC (calls run,
 * tg_req_complete() follows once req->resp is ready) or a negative tg_err. */
struct tg_handler_ops {
    const char *kind;
    int (*serve)(struct tg_req *req);
};

extern const struct tg_handler_ops tg_handler_proxy;
extern const struct tg_handler_ops tg_handler_fanout;
extern const struct tg_handler_ops tg_handler_local;

/* True for hop-by-hop headers (RFC 9110 7.6.1), which a proxy never forwards, in either
 * direction, plus the names listed in connection (the Connection header's value, may be NULL). */
bool tg_header_is_hop_by_hop(const char *name, size_t len, const char *connection,
                             size_t connection_len);

/* Builds the upstream request-target for a proxy route: upstream_path with {params} expanded,
 * or the prefix remainder (strip_prefix), or the client's path; the client's query follows.
 * Writes into out (NUL-terminated). Returns the length, or -1 when it does not fit. */
long tg_proxy_target(const struct tg_req *req, char *out, size_t cap);

#endif
