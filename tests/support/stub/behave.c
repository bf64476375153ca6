#include "tests/support/stub/stub.h"

/* tg-stub: sending the answer, and the scripted misbehaviours (hang, reset, close, trickle,
 * close after the headers). */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static bool send_all(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (!(w == -1 && errno == EINTR)) {
            mark_gone(c, "sending");
            return false;
        }
    }
    return true;
}

/* Sends n bytes of the pattern (byte i = 'a' + i % 26), starting at pattern offset `from`. */
static bool send_pattern(struct conn *c, size_t from, size_t n)
{
    while (n > 0) {
        size_t k = n < PATTERN_CHUNK ? n : PATTERN_CHUNK;
        if (!send_all(c, stub.pattern + from % 26, k)) {
            return false;
        }
        atomic_fetch_add(&stub.body_sent, k);
        from += k;
        n -= k;
    }
    return true;
}

/* Whether pa shapes a body_bytes answer (chunked, paced, or cut). */
static bool shaped(const struct params *pa)
{
    return pa != NULL &&
           (pa->chunked || pa->send_rate > 0 || pa->stall_after >= 0 || pa->reset_after >= 0);
}

/* After `sent` bytes, the cut pa asks for: silence until the peer leaves, or a reset. */
static void cut(struct conn *c, const struct params *pa)
{
    if (pa->stall_after >= 0) {
        wait_peer_close(c, -1, "sending");
        return;
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() now sends RST */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* n bytes of the pattern as pa shapes them: in chunks of PATTERN_CHUNK when chunked, at
 * send_rate bytes a second, cut after stall_after or reset_after bytes. false when the peer
 * went away or the body was cut. */
static bool send_shaped(struct conn *c, const struct params *pa, size_t n)
{
    long at = pa->stall_after >= 0 ? pa->stall_after : pa->reset_after;
    uint64_t t0 = now_us();
    size_t sent = 0;

    for (;;) {
        size_t k = pace_step(pa->send_rate, n - sent < PATTERN_CHUNK ? n - sent : PATTERN_CHUNK);
        char size[32];
        int hn;
        if (at >= 0 && sent + k > (size_t)at) {
            k = (size_t)at - sent;
        }
        if (at >= 0 && k == 0) {
            cut(c, pa);
            return false;
        }
        if (k == 0) {
            break;
        }
        hn = snprintf(size, sizeof(size), "%zx\r\n", k);
        if ((pa->chunked && !send_all(c, size, (size_t)hn)) || !send_pattern(c, sent, k) ||
            (pa->chunked && !send_all(c, "\r\n", 2))) {
            return false;
        }
        sent += k;
        pace(t0, sent, pa->send_rate);
    }
    return !pa->chunked || send_all(c, "0\r\n\r\n", 5);
}

static const char *reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } table[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {413, "Content Too Large"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].status == status) {
            return table[i].text;
        }
    }
    return "Status";
}

/* Status line and headers; clen < 0 omits Content-Length (204, 304); pa's chunked says
 * Transfer-Encoding instead. */
static void format_head(struct sbuf *s, int status, const char *ctype, long long clen,
                        const struct params *pa, bool close)
{
    sbuf_addf(s, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (clen >= 0 && pa != NULL && pa->chunked) {
        sbuf_str(s, "Content-Type: ");
        sbuf_str(s, ctype);
        sbuf_str(s, "\r\nTransfer-Encoding: chunked\r\n");
    } else if (clen >= 0) {
        sbuf_str(s, "Content-Type: ");
        sbuf_str(s, ctype);
        sbuf_addf(s, "\r\nContent-Length: %lld\r\n", clen);
    }
    for (size_t i = 0; pa != NULL && i < pa->nhdr; i++) {
        sbuf_str(s, pa->hdr_name[i]);
        sbuf_str(s, ": ");
        sbuf_str(s, pa->hdr_value[i]);
        sbuf_str(s, "\r\n");
    }
    sbuf_str(s, close ? "Connection: close\r\n\r\n" : "\r\n");
}

/* Sends the whole reply (no body for HEAD, 204 and 304). */
bool send_reply(struct conn *c, bool head, const struct params *pa, const struct reply *rep,
                bool close)
{
    bool bodyless = rep->status == 204 || rep->status == 304;
    bool send_body = !bodyless && !head;
    struct sbuf s = {0};
    bool ok;

    format_head(&s, rep->status, rep->ctype, bodyless ? -1 : (long long)rep->len, pa, close);
    if (send_body && !rep->pattern && rep->len <= 65536) {
        sbuf_add(&s, rep->body, rep->len); /* one send for head and small body */
        send_body = false;
    }
    ok = !s.oom && send_all(c, s.p, s.len);
    free(s.p);
    if (ok && send_body && rep->pattern && shaped(pa)) {
        return send_shaped(c, pa, rep->len);
    }
    if (ok && send_body) {
        ok = rep->pattern ? send_pattern(c, 0, rep->len) : send_all(c, rep->body, rep->len);
    }
    return ok;
}

/* Waits up to ms milliseconds (-1: forever) for the peer to close or reset the connection.
 * Only POLLRDHUP is asked for, so pipelined bytes do not end the wait. Returns true (and
 * marks the connection gone) if the peer left. */
bool wait_peer_close(struct conn *c, long ms, const char *what)
{
    uint64_t end = now_us() + (uint64_t)(ms < 0 ? 0 : ms) * 1000u;

    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
        uint64_t now = now_us();
        int timeout = ms < 0 ? -1 : now >= end ? 0 : (int)((end - now + 999) / 1000);
        int n = poll(&p, 1, timeout);
        if (n > 0 || (n == -1 && errno != EINTR)) {
            mark_gone(c, what);
            return true;
        }
        if (n == 0 && timeout == 0) {
            return false;
        }
    }
}

static bool trickle(struct conn *c, const struct request *r, const struct params *pa,
                    const struct reply *rep, bool close)
{
    long ms = pa->trickle_ms >= 0 ? pa->trickle_ms : 100;
    long bytes = pa->trickle_bytes >= 0 ? pa->trickle_bytes : 10;
    struct sbuf s = {0};
    bool ok;

    format_head(&s, rep->status, rep->ctype, bytes, pa, close);
    ok = !s.oom && send_all(c, s.p, s.len);
    free(s.p);
    for (long i = 0; ok && !is_head(r) && i < bytes; i++) {
        ok = !wait_peer_close(c, ms, "sending") && send_pattern(c, (size_t)i, 1);
    }
    return ok;
}

/* Everything after the optional delay. Returns true to keep the connection; *sent gets the
 * status that went out (0 if none). */
bool act(struct conn *c, const struct request *r, const struct params *pa, int *sent)
{
    struct reply rep = {0};
    bool close = !r->keep_alive || pa->close_token;
    bool keep = false;

    if (pa->hang) {
        wait_peer_close(c, -1, "waiting");
        return false;
    }
    if (pa->reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() now sends RST */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return false;
    }
    if (pa->close) {
        shutdown(c->fd, SHUT_WR);
        return false;
    }
    build_reply(c, r, pa, &rep);
    if (rep.own.oom) {
        goto out;
    }
    if (rep.reset_after) {
        /* Stored, and the answer never comes: what a crash after the commit looks like. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        goto out;
    }
    if (rep.hang_ms > 0 && wait_peer_close(c, rep.hang_ms, "waiting")) {
        goto out;
    }
    *sent = rep.status;
    if (pa->close_after_headers) {
        struct sbuf s = {0};
        format_head(&s, rep.status, rep.ctype, 100, pa, false);
        if (!s.oom && send_all(c, s.p, s.len)) {
            send_pattern(c, 0, 10);
        }
        free(s.p);
    } else if (pa->trickle_ms >= 0 || pa->trickle_bytes >= 0) {
        keep = trickle(c, r, pa, &rep, close) && !close;
    } else {
        keep = send_reply(c, is_head(r), pa, &rep, close) && !close;
    }
out:
    free(rep.own.p);
    return keep;
}
