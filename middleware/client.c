#include "middleware/client.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/netaddr.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Walks one X-Forwarded-For value (v, len bytes) from its right end. Returns false when the
 * client is decided (written into req->client_ip), true to go on with the value before. */
static bool walk(struct tg_req *req, const char *v, size_t len)
{
    const struct tg_conf *c = req->conf;
    size_t end = len;

    while (end > 0) {
        size_t start = end;
        size_t e = end;
        while (start > 0 && v[start - 1] != ',') {
            start--;
        }
        end = start > 0 ? start - 1 : 0;
        while (start < e && is_ows(v[start])) {
            start++;
        }
        while (e > start && is_ows(v[e - 1])) {
            e--;
        }
        if (e == start) {
            continue;
        }
        if (!tg_ip_is_valid(v + start, e - start) || e - start >= sizeof(req->client_ip)) {
            return false; /* garbage: the last good hop stays the client */
        }
        snprintf(req->client_ip, sizeof(req->client_ip), "%.*s", (int)(e - start), v + start);
        if (!tg_cidr_contains(c->trusted_proxies, c->n_trusted_proxies, v + start, e - start)) {
            return false;
        }
    }
    return true;
}

static int client_on_headers(struct tg_req *req)
{
    const struct tg_conf *c = req->conf;

    req->peer_trusted =
        c->n_trusted_proxies > 0 && tg_cidr_contains(c->trusted_proxies, c->n_trusted_proxies,
                                                     req->peer_ip, strlen(req->peer_ip));
    if (!req->peer_trusted) {
        return TG_MW_NEXT;
    }
    /* Field lines in reverse: the last one was added by the nearest proxy. */
    for (size_t i = req->n_hdrs; i > 0; i--) {
        const struct tg_kv *kv = &req->hdrs[i - 1];
        if (tg_header_name_is(kv->name, kv->name_len, "X-Forwarded-For") &&
            !walk(req, kv->value, kv->value_len)) {
            break;
        }
    }
    return TG_MW_NEXT;
}

const struct tg_mw_ops tg_mw_client = {
    .name = "client",
    .on_headers = client_on_headers,
};
