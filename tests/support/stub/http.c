#include "tests/support/stub/stub.h"

/* tg-stub: reading HTTP/1.1 requests from a connection: the head, then a Content-Length or
 * chunked body. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEAD_MAX       65536 /* request line + headers + blank line, in bytes */
#define CHUNK_LINE_MAX 4096  /* chunk-size line or trailer line */

/* The peer (or our own shutdown) ended the connection while we were in state `what`. */
void mark_gone(struct conn *c, const char *what)
{
    c->close_by = atomic_load(&stub.stopping) ? "stub" : "peer";
    c->close_while = what;
}

/* Reads more bytes into c->in (growing it up to `max`). Returns 1 on data, 0 if the peer
 * closed or reset the connection, -1 if the buffer is full. Blocking recv() wakes at once on
 * FIN or RST, so idle keep-alive connections notice the peer leaving promptly. */
static int in_fill(struct conn *c, size_t max)
{
    if (c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
        c->in_len -= c->in_start;
        c->in_start = 0;
    }
    if (c->in_len == c->in_cap) {
        size_t cap = c->in_cap * 2;
        char *np;
        cap = cap > max ? max : cap;
        if (cap <= c->in_cap || (np = realloc(c->in, cap)) == NULL) {
            return -1;
        }
        c->in = np;
        c->in_cap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            return 1;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        mark_gone(c, "idle");
        return 0;
    }
}

/* Waits for a complete header block; *len gets its size including the blank line. */
static enum rd read_head(struct conn *c, size_t *len)
{
    size_t scanned = 0;

    for (;;) {
        const char *p = c->in + c->in_start;
        size_t have = c->in_len - c->in_start;
        if (scanned == 0 && have >= 2 && p[0] == '\r' && p[1] == '\n') {
            c->in_start += 2; /* stray CRLF between requests (RFC 9112 2.2) */
            continue;
        }
        const char *end = have >= 4 ? memmem(p + scanned, have - scanned, "\r\n\r\n", 4) : NULL;
        if (end != NULL) {
            *len = (size_t)(end - p) + 4;
            return RD_OK;
        }
        scanned = have >= 3 ? have - 3 : 0;
        int rc = in_fill(c, HEAD_MAX);
        if (rc <= 0) {
            return rc == 0 ? RD_GONE : RD_HEADBIG;
        }
    }
}

static bool is_token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

bool is_token(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!is_token_char(*s)) {
            return false;
        }
    }
    return true;
}

/* True if the comma-separated header value contains `token` (case-insensitive). */
bool has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);

    while (value != NULL && *value != '\0') {
        value += strspn(value, " \t,");
        size_t n = strcspn(value, ",");
        while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t')) {
            n--;
        }
        if (n == tl && strncasecmp(value, token, tl) == 0) {
            return true;
        }
        value = strchr(value, ',');
    }
    return false;
}

const char *header_get(const struct request *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcasecmp(r->hdrs[i].name, name) == 0) {
            return r->hdrs[i].value;
        }
    }
    return NULL;
}

bool is_head(const struct request *r)
{
    return strcmp(r->method, "HEAD") == 0;
}

/* Splits one "Name: value" line in place. */
static bool parse_header_line(char *line, struct header *h)
{
    char *colon = strchr(line, ':');
    char *v;
    size_t n;

    if (colon == NULL) {
        return false;
    }
    *colon = '\0';
    v = colon + 1 + strspn(colon + 1, " \t");
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        v[--n] = '\0';
    }
    h->name = line;
    h->value = v;
    return is_token(line) && strpbrk(v, "\r\n") == NULL;
}

/* Copies and parses the request line and headers (head[0..len) ends with CRLF CRLF). */
static enum rd parse_head(struct request *r, const char *head, size_t len)
{
    char *line, *next, *version, *sp;
    size_t max_hdrs = 0;

    r->head = malloc(len + 1);
    if (r->head == NULL) {
        return RD_HEADBIG;
    }
    memcpy(r->head, head, len);
    r->head[len - 2] = '\0'; /* the last line's CRLF ends the block */
    for (const char *p = r->head; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        max_hdrs++;
    }
    r->hdrs = calloc(max_hdrs + 1, sizeof(*r->hdrs));
    r->nhdrs = 0; /* r is fresh; said here for the analyzer, which sees read_request alone */
    if (r->hdrs == NULL) {
        return RD_HEADBIG;
    }
    line = r->head;
    next = strstr(line, "\r\n");
    *next = '\0';
    r->method = line;
    if ((sp = strchr(line, ' ')) == NULL || (version = strchr(sp + 1, ' ')) == NULL) {
        return RD_BAD;
    }
    *sp = '\0';
    *version++ = '\0';
    r->target = sp + 1;
    if (!is_token(r->method) || *r->target == '\0' || strchr(r->target, ' ') != NULL ||
        (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)) {
        return RD_BAD;
    }
    for (line = next + 2; *line != '\0'; line = next + 2) {
        next = strstr(line, "\r\n");
        *next = '\0';
        if (!parse_header_line(line, &r->hdrs[r->nhdrs++])) {
            return RD_BAD; /* also rejects obs-fold: a line starting with a space */
        }
    }
    const char *conn = header_get(r, "Connection");
    r->keep_alive = strcmp(version, "HTTP/1.1") == 0 ? !has_token(conn, "close")
                                                     : has_token(conn, "keep-alive");
    return RD_OK;
}

/* Copies n body bytes to dst: first what is buffered, then straight from the socket. */
static enum rd read_exact(struct conn *c, char *dst, size_t n)
{
    size_t have = c->in_len - c->in_start;
    size_t got = have < n ? have : n;

    if (got > 0) {
        memcpy(dst, c->in + c->in_start, got);
        c->in_start += got;
    }
    while (got < n) {
        ssize_t k = recv(c->fd, dst + got, n - got, 0);
        if (k > 0) {
            got += (size_t)k;
        } else if (!(k == -1 && errno == EINTR)) {
            mark_gone(c, "idle");
            return RD_GONE;
        }
    }
    return RD_OK;
}

/* Consumes one CRLF-terminated line; *line points into c->in until the next read. */
static enum rd read_line(struct conn *c, const char **line, size_t *len)
{
    for (;;) {
        const char *p = c->in + c->in_start;
        const char *end = memmem(p, c->in_len - c->in_start, "\r\n", 2);
        if (end != NULL) {
            *line = p;
            *len = (size_t)(end - p);
            c->in_start += *len + 2;
            return RD_OK;
        }
        if (c->in_len - c->in_start >= CHUNK_LINE_MAX) {
            return RD_BAD;
        }
        int rc = in_fill(c, c->in_cap > HEAD_MAX ? c->in_cap : HEAD_MAX);
        if (rc <= 0) {
            return rc == 0 ? RD_GONE : RD_BAD;
        }
    }
}

/* Reads one chunk (size line, data, CRLF) onto body; *last is set by the zero-size chunk. */
static enum rd read_chunk(struct conn *c, struct sbuf *body, bool *last)
{
    char hex[20] = {0};
    const char *line;
    size_t len;
    char *end;
    unsigned long long size;
    enum rd rc = read_line(c, &line, &len);

    if (rc != RD_OK) {
        return rc;
    }
    memcpy(hex, line, len < sizeof(hex) - 1 ? len : sizeof(hex) - 1);
    size = strtoull(hex, &end, 16);
    if (end == hex || (*end != '\0' && *end != ';' && *end != ' ') || size > (1ull << 40)) {
        return RD_BAD;
    }
    *last = size == 0;
    if (size == 0) {
        return RD_OK;
    }
    if (!sbuf_reserve(body, size)) {
        return RD_TOOBIG;
    }
    if ((rc = read_exact(c, body->p + body->len, size)) != RD_OK) {
        return rc;
    }
    body->len += size;
    rc = read_line(c, &line, &len);
    return rc == RD_OK && len != 0 ? RD_BAD : rc;
}

static enum rd read_chunked(struct conn *c, struct request *r)
{
    struct sbuf body = {0};
    const char *line;
    size_t len = 0;
    bool last = false;
    enum rd rc = RD_OK;

    while (rc == RD_OK && !last) {
        rc = read_chunk(c, &body, &last);
    }
    while (rc == RD_OK && (rc = read_line(c, &line, &len)) == RD_OK && len > 0) {
        /* trailers, up to the blank line: read and dropped */
    }
    r->body = body.p;
    r->body_len = body.len;
    return rc;
}

static enum rd read_body(struct conn *c, struct request *r)
{
    const char *cl = header_get(r, "Content-Length");
    const char *te = header_get(r, "Transfer-Encoding");
    const char *expect = header_get(r, "Expect");
    unsigned long long n = 0;
    char *end = NULL;

    if (te != NULL && (cl != NULL || strcasecmp(te, "chunked") != 0)) {
        return RD_BAD; /* both framings, or one we do not speak: refuse rather than guess */
    }
    if (cl != NULL) {
        n = strtoull(cl, &end, 10);
        if (*cl < '0' || *cl > '9' || *end != '\0') {
            return RD_BAD;
        }
    }
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && (te != NULL || n > 0)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) == -1) {
            mark_gone(c, "idle");
            return RD_GONE;
        }
    }
    if (te != NULL) {
        return read_chunked(c, r);
    }
    if (n == 0) {
        return RD_OK;
    }
    if (n >= SIZE_MAX || (r->body = malloc((size_t)n)) == NULL) {
        return RD_TOOBIG;
    }
    r->body_len = (size_t)n;
    return read_exact(c, r->body, r->body_len);
}

bool is_stub_target(const char *target)
{
    return strncmp(target, "/_stub/", 7) == 0;
}

bool is_sink_target(const char *target)
{
    return strncmp(target, "/_sink", 6) == 0 && (target[6] == '\0' || target[6] == '?');
}

/* Reads n body bytes of r without keeping them: counted, hashed, at most rate bytes a second
 * since t0 (so the sender is held back by TCP's flow control). */
static enum rd sink_exact(struct conn *c, struct request *r, uint64_t n, uint64_t t0, long rate)
{
    char buf[16384];

    while (n > 0) {
        size_t have = c->in_len - c->in_start;
        size_t k = pace_step(rate, sizeof(buf) < n ? sizeof(buf) : (size_t)n);
        const char *p = buf;
        if (have > 0) {
            k = have < k ? have : k;
            p = c->in + c->in_start;
            c->in_start += k;
        } else {
            ssize_t got = recv(c->fd, buf, k, 0);
            if (got <= 0) {
                if (got == -1 && errno == EINTR) {
                    continue;
                }
                mark_gone(c, "reading");
                return RD_GONE;
            }
            k = (size_t)got;
        }
        r->body_sha = fnv1a_more(r->body_sha, p, k);
        r->body_len += k;
        n -= k;
        atomic_fetch_add(&stub.body_sunk, k);
        pace(t0, r->body_len, rate);
    }
    return RD_OK;
}

/* A /_sink body, Content-Length or chunked, read at its read_rate and dropped. */
static enum rd read_body_sink(struct conn *c, struct request *r)
{
    const char *cl = header_get(r, "Content-Length");
    struct params pa = {0};
    uint64_t t0 = now_us();
    enum rd rc = RD_OK;
    bool last = false;

    r->sunk = true;
    r->body_sha = FNV1A_INIT;
    if (!parse_params(r->target, &pa)) {
        free(pa.qbuf);
        return RD_BAD;
    }
    free(pa.qbuf);
    if (header_get(r, "Expect") != NULL &&
        strcasecmp(header_get(r, "Expect"), "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) == -1) {
            mark_gone(c, "idle");
            return RD_GONE;
        }
    }
    if (header_get(r, "Transfer-Encoding") == NULL) {
        return cl != NULL ? sink_exact(c, r, strtoull(cl, NULL, 10), t0, pa.read_rate) : RD_OK;
    }
    while (rc == RD_OK && !last) {
        const char *line;
        size_t len;
        unsigned long long size;
        rc = read_line(c, &line, &len);
        if (rc != RD_OK) {
            break;
        }
        size = strtoull(line, NULL, 16);
        last = size == 0;
        rc = last ? RD_OK : sink_exact(c, r, size, t0, pa.read_rate);
        rc = rc != RD_OK || last ? rc : read_line(c, &line, &len);
    }
    while (rc == RD_OK) { /* trailers, up to the blank line */
        const char *line;
        size_t len = 0;
        rc = read_line(c, &line, &len);
        if (len == 0) {
            break;
        }
    }
    return rc;
}

enum rd read_request(struct conn *c, struct request *r)
{
    size_t len = 0;
    enum rd rc = read_head(c, &len);

    if (rc != RD_OK) {
        return rc;
    }
    rc = parse_head(r, c->in + c->in_start, len);
    c->in_start += len;
    if (rc != RD_OK) {
        return rc;
    }
    decide(c, !is_stub_target(r->target));
    return is_sink_target(r->target) ? read_body_sink(c, r) : read_body(c, r);
}

void request_cleanup(struct request *r)
{
    free(r->head);
    free(r->hdrs);
    free(r->body);
    *r = (struct request){0};
}
