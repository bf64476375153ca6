/* Which client headers an upstream call passes on, and which never pass. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "routes/handler.h"

/* Whether name appears as a token of the comma-separated list. */
static bool in_list(const char *name, size_t len, const char *list, size_t list_len)
{
    size_t i = 0;

    while (i < list_len) {
        size_t start;
        size_t end;
        while (i < list_len && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) {
            i++;
        }
        start = i;
        while (i < list_len && list[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t')) {
            end--;
        }
        if (end - start == len && len > 0 && strncasecmp(list + start, name, len) == 0) {
            return true;
        }
    }
    return false;
}

bool tg_header_is_hop_by_hop(const char *name, size_t len, const char *connection,
                             size_t connection_len)
{
    if (tg_header_name_is(name, len, "Connection") || tg_header_name_is(name, len, "Keep-Alive") ||
        tg_header_name_is(name, len, "TE") || tg_header_name_is(name, len, "Trailer") ||
        tg_header_name_is(name, len, "Transfer-Encoding") ||
        tg_header_name_is(name, len, "Upgrade") ||
        (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)) {
        return true;
    }
    return connection != NULL && in_list(name, len, connection, connection_len);
}

bool tg_header_passes_back(const struct tg_conf *conf, const char *name, size_t len,
                           const char *connection, size_t connection_len)
{
    return !tg_header_is_hop_by_hop(name, len, connection, connection_len) &&
           !tg_header_name_is(name, len, "Content-Length") &&
           !tg_header_name_is(name, len, "Date") && !tg_header_name_is(name, len, "traceparent") &&
           !tg_header_name_is(name, len, conf->trace_header);
}

/* Headers the gateway sets itself on the upstream call, so the client's copies never pass:
 * framing (curl writes its own), trace context (validated and re-made), budget, forwarding. */
static bool replaced_by_gateway(const struct tg_req *req, const char *name, size_t len)
{
    const struct tg_conf *c = req->conf;

    if (tg_header_name_is(name, len, "Host") || tg_header_name_is(name, len, "Content-Length") ||
        tg_header_name_is(name, len, "Expect") || tg_header_name_is(name, len, "traceparent") ||
        tg_header_name_is(name, len, "tracestate") ||
        tg_header_name_is(name, len, "X-Request-Timeout-Ms") ||
        tg_header_name_is(name, len, "grpc-timeout") ||
        tg_header_name_is(name, len, "X-Forwarded-For") ||
        tg_header_name_is(name, len, "X-Forwarded-Proto") ||
        tg_header_name_is(name, len, "X-Forwarded-Host") ||
        tg_header_name_is(name, len, c->trace_header)) {
        return true;
    }
    for (size_t i = 0; i < c->n_trace_accept; i++) {
        if (tg_header_name_is(name, len, c->trace_accept[i])) {
            return true;
        }
    }
    return false;
}

size_t tg_header_forward(const struct tg_req *req, struct tg_kv *out, char *xff)
{
    size_t conn_len = 0;
    const char *conn = tg_req_header(req, "Connection", &conn_len);
    const char *prev;
    const char *host;
    size_t prev_len = 0;
    size_t host_len = 0;
    size_t n = 0;

    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (tg_header_is_hop_by_hop(kv->name, kv->name_len, conn, conn_len) ||
            replaced_by_gateway(req, kv->name, kv->name_len)) {
            continue;
        }
        out[n++] = *kv;
    }
    /* A trusted proxy's list is extended with it; anyone else's is replaced: a client could
     * put any address there. */
    prev = req->peer_trusted ? tg_req_header(req, "X-Forwarded-For", &prev_len) : NULL;
    if (prev != NULL && prev_len + strlen(req->peer_ip) + 3 < TG_XFF_MAX) {
        snprintf(xff, TG_XFF_MAX, "%.*s, %s", (int)prev_len, prev, req->peer_ip);
    } else {
        snprintf(xff, TG_XFF_MAX, "%s", req->peer_ip);
    }
    out[n++] = (struct tg_kv){"X-Forwarded-For", xff, 15, strlen(xff)};
    out[n++] = req->tls ? (struct tg_kv){"X-Forwarded-Proto", "https", 17, 5}
                        : (struct tg_kv){"X-Forwarded-Proto", "http", 17, 4};
    host = tg_req_header(req, "Host", &host_len);
    if (host != NULL) {
        out[n++] = (struct tg_kv){"X-Forwarded-Host", host, 16, host_len};
    }
    return n;
}
