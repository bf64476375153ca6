/* tg-stub: the demo ePRO services (questionnaire, patient, history) for `make run` and docker,
 * and a scriptable, misbehaving HTTP/1.1 upstream for the integration tests.
 *
 * One thread per connection (small stacks, so thousands of idle keep-alive connections are
 * cheap), blocking sockets, plain HTTP/1.1. Query parameters on any path script the answer
 * (status, delay, hang, trickle, reset, ...); --record writes one JSON line per connection
 * event so tests can assert what the upstream saw and when (CLOCK_MONOTONIC microseconds).
 * Only libc and pthreads: the binary must build wherever the gateway builds. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX       65536 /* request line + headers + blank line, in bytes */
#define CHUNK_LINE_MAX 4096  /* chunk-size line or trailer line */
#define MAX_LISTENERS  16
#define MAX_EXTRA_HDRS 16
#define PATTERN_CHUNK  16384
#if defined(__SANITIZE_ADDRESS__)
#define STUB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang's spelling */
#define STUB_ASAN 1
#endif
#endif
#ifdef STUB_ASAN
#define THREAD_STACK ((size_t)512 * 1024) /* ASan's redzones need room */
#else
#define THREAD_STACK ((size_t)64 * 1024) /* big buffers live on the heap */
#endif

enum service {
    SVC_TEST = 0,
    SVC_QUESTIONNAIRE,
    SVC_PATIENT,
    SVC_HISTORY,
};
static const char *const service_names[] = {"test", "questionnaire", "patient", "history"};

/* Outcome of reading a request. */
enum rd {
    RD_OK = 0,
    RD_GONE,    /* peer closed or reset; close_by/close_while already set */
    RD_BAD,     /* malformed: 400 */
    RD_TOOBIG,  /* body does not fit in memory: 413 */
    RD_HEADBIG, /* header block over HEAD_MAX: 431 */
};

struct sbuf {
    char *p; /* owned, NUL-terminated when non-NULL */
    size_t len, cap;
    bool oom;
};

struct header {
    char *name, *value; /* borrowed from request.head */
};

struct request {
    char *head;            /* owned copy of the header block, split in place */
    char *method, *target; /* into head; target is raw, as received */
    struct header *hdrs;   /* owned */
    size_t nhdrs;
    char *body; /* owned, may be NULL when body_len is 0 */
    size_t body_len;
    bool keep_alive;
};

/* Test behaviours from the query string; values point into qbuf (owned, %-decoded in place). */
struct params {
    char *qbuf;
    int status;
    long delay_ms, trickle_ms, trickle_bytes, body_bytes; /* -1: not given */
    bool hang, reset, close, close_after_headers, close_token;
    const char *body, *ctype;
    size_t body_len;
    const char *hdr_name[MAX_EXTRA_HDRS], *hdr_value[MAX_EXTRA_HDRS];
    size_t nhdr;
};

struct reply {
    int status;
    const char *ctype; /* borrowed */
    struct sbuf own;   /* generated body */
    const char *body;  /* borrowed, or own.p */
    size_t len;
    bool pattern; /* body is `len` bytes of the pattern */
};

struct conn {
    int fd;
    uint64_t id, t_open;
    enum service svc;
    char *in; /* owned; unread bytes are in[in_start, in_len) */
    size_t in_start, in_len, in_cap;
    unsigned requests;
    bool decided, counted; /* counted: first request was not /_stub/... */
    const char *close_by, *close_while;
    struct conn *prev, *next; /* g.conns list, under g.conn_lock */
};

struct listener {
    int fd, port;
    enum service svc;
};

static struct {
    struct listener ls[MAX_LISTENERS];
    size_t nls;
    const char *host, *record_path;
    int record_fd;             /* -1 without --record */
    pthread_mutex_t out_lock;  /* one line at a time on stdout and the record file */
    pthread_mutex_t conn_lock; /* guards conns and live */
    pthread_cond_t conn_gone;
    struct conn *conns;
    size_t live;
    pthread_attr_t attr;
    atomic_bool stopping;
    atomic_uint_fast64_t next_conn_id, next_submission, opened, open, requests;
    char pattern[PATTERN_CHUNK + 26];
} g = {
    .host = "127.0.0.1",
    .record_fd = -1,
    .out_lock = PTHREAD_MUTEX_INITIALIZER,
    .conn_lock = PTHREAD_MUTEX_INITIALIZER,
    .conn_gone = PTHREAD_COND_INITIALIZER,
};

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    }
    return h;
}

/* ---- growable strings and JSON ---- */

/* Makes room for n more bytes and a NUL; false (and s->oom) when memory ran out. */
static bool sbuf_reserve(struct sbuf *s, size_t n)
{
    size_t cap = s->cap ? s->cap : 256;
    char *np;

    if (s->oom || s->len + n + 1 <= s->cap) {
        return !s->oom;
    }
    while (cap < s->len + n + 1 && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    np = cap >= s->len + n + 1 ? realloc(s->p, cap) : NULL;
    if (np == NULL) {
        s->oom = true;
        return false;
    }
    s->p = np;
    s->cap = cap;
    return true;
}

static void sbuf_add(struct sbuf *s, const char *p, size_t n)
{
    if (n == 0 || !sbuf_reserve(s, n)) {
        return;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sbuf_str(struct sbuf *s, const char *str)
{
    sbuf_add(s, str, strlen(str));
}

static void sbuf_addf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbuf_addf(struct sbuf *s, const char *fmt, ...)
{
    char tmp[256]; /* every caller formats numbers and short names */
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        sbuf_add(s, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes are not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t need = 0;
    uint32_t cp;

    if (p[0] < 0x80) {
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        need = 2;
    } else if ((p[0] & 0xF0) == 0xE0) {
        need = 3;
    } else if ((p[0] & 0xF8) == 0xF0) {
        need = 4;
    }
    if (need == 0 || need > n) {
        return 0;
    }
    cp = p[0] & (0x7Fu >> need);
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return need;
}

/* Appends p[0..n) as a JSON string. Bytes that are not valid UTF-8 become \u00XX so the line
 * stays valid JSON whatever the peer sent. */
static void sbuf_json(struct sbuf *s, const char *p, size_t n)
{
    sbuf_add(s, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        size_t k = utf8_len((const unsigned char *)p + i, n - i);
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            sbuf_add(s, esc, 2);
            k = 1;
        } else if (ch < 0x20 || ch == 0x7F || k == 0) {
            sbuf_addf(s, "\\u%04x", ch);
            k = 1;
        } else {
            sbuf_add(s, p + i, k);
        }
        i += k;
    }
    sbuf_add(s, "\"", 1);
}

static void sbuf_json_headers(struct sbuf *s, const struct request *r)
{
    sbuf_str(s, "[");
    for (size_t i = 0; i < r->nhdrs; i++) {
        sbuf_str(s, i ? ",[" : "[");
        sbuf_json(s, r->hdrs[i].name, strlen(r->hdrs[i].name));
        sbuf_str(s, ",");
        sbuf_json(s, r->hdrs[i].value, strlen(r->hdrs[i].value));
        sbuf_str(s, "]");
    }
    sbuf_str(s, "]");
}

/* ---- output: stdout log lines and the record file ---- */

/* Writes the line with one write() under a lock, so lines from threads (and from several
 * processes sharing an O_APPEND record file) never interleave. Frees the buffer. */
static void emit(int fd, struct sbuf *line)
{
    sbuf_add(line, "\n", 1);
    if (fd >= 0 && !line->oom) {
        pthread_mutex_lock(&g.out_lock);
        ssize_t w = write(fd, line->p, line->len);
        pthread_mutex_unlock(&g.out_lock);
        (void)w; /* nobody to tell if stdout or the record file is gone */
    }
    free(line->p);
    *line = (struct sbuf){0};
}

static void record_conn_event(const struct conn *c, const char *event, uint64_t t_us)
{
    struct sbuf s = {0};

    sbuf_addf(&s, "{\"event\":\"%s\",\"conn_id\":%" PRIu64 ",\"t_us\":%" PRIu64, event, c->id,
              t_us);
    if (strcmp(event, "close") == 0) {
        sbuf_addf(&s, ",\"by\":\"%s\",\"while\":\"%s\"", c->close_by, c->close_while);
    }
    sbuf_str(&s, "}");
    emit(g.record_fd, &s);
}

static void record_request(const struct conn *c, const struct request *r)
{
    struct sbuf s = {0};

    sbuf_addf(&s, "{\"event\":\"request\",\"conn_id\":%" PRIu64 ",\"seq\":%u,\"method\":", c->id,
              c->requests);
    sbuf_json(&s, r->method, strlen(r->method));
    sbuf_str(&s, ",\"target\":");
    sbuf_json(&s, r->target, strlen(r->target));
    sbuf_str(&s, ",\"headers\":");
    sbuf_json_headers(&s, r);
    sbuf_addf(&s, ",\"body_len\":%zu,\"body_sha\":\"%016" PRIx64 "\",\"t_us\":%" PRIu64 "}",
              r->body_len, fnv1a(r->body, r->body_len), now_us());
    emit(g.record_fd, &s);
}

static bool is_trace_id(const char *p, size_t n)
{
    if (n == 0 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static const char *header_get(const struct request *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcasecmp(r->hdrs[i].name, name) == 0) {
            return r->hdrs[i].value;
        }
    }
    return NULL;
}

/* X-Trace-Id if valid, else the trace-id field of traceparent if valid, else none. */
static bool trace_id_of(const struct request *r, const char **p, size_t *n)
{
    const char *v = header_get(r, "X-Trace-Id");
    const char *tp = header_get(r, "traceparent");

    if (v != NULL && is_trace_id(v, strlen(v))) {
        *p = v;
        *n = strlen(v);
        return true;
    }
    if (tp != NULL && (tp = strchr(tp, '-')) != NULL) {
        const char *end = strchr(tp + 1, '-');
        *p = tp + 1;
        *n = end ? (size_t)(end - *p) : strlen(*p);
        return is_trace_id(*p, *n);
    }
    return false;
}

/* The access log line. Never the body, never the query (both may carry patient data). */
static void log_request(const struct conn *c, const struct request *r, int status)
{
    struct sbuf s = {0};
    struct timespec ts;
    struct tm tm;
    char when[32];
    const char *tid;
    size_t tid_len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_addf(&s, "{\"ts\":\"%s.%03ldZ\",\"level\":\"info\",\"event\":\"stub.request\"", when,
              ts.tv_nsec / 1000000);
    sbuf_addf(&s, ",\"service\":\"%s\",\"method\":", service_names[c->svc]);
    sbuf_json(&s, r->method, strlen(r->method));
    sbuf_str(&s, ",\"path\":");
    sbuf_json(&s, r->target, strcspn(r->target, "?"));
    sbuf_addf(&s, ",\"status\":%d", status);
    if (trace_id_of(r, &tid, &tid_len)) {
        sbuf_str(&s, ",\"trace_id\":");
        sbuf_json(&s, tid, tid_len);
    }
    sbuf_str(&s, "}");
    emit(STDOUT_FILENO, &s);
}

/* ---- reading requests ---- */

/* The peer (or our own shutdown) ended the connection while we were in state `what`. */
static void mark_gone(struct conn *c, const char *what)
{
    c->close_by = atomic_load(&g.stopping) ? "stub" : "peer";
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

static bool is_token(const char *s)
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
static bool has_token(const char *value, const char *token)
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

static bool is_stub_target(const char *target)
{
    return strncmp(target, "/_stub/", 7) == 0;
}

/* The first request decides whether the connection is counted and recorded. */
static void decide(struct conn *c, bool counted)
{
    if (c->decided) {
        return;
    }
    c->decided = true;
    c->counted = counted;
    if (counted) {
        atomic_fetch_add(&g.opened, 1);
        atomic_fetch_add(&g.open, 1);
        record_conn_event(c, "open", c->t_open);
    }
}

static enum rd read_request(struct conn *c, struct request *r)
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
    return read_body(c, r);
}

static void request_cleanup(struct request *r)
{
    free(r->head);
    free(r->hdrs);
    free(r->body);
    *r = (struct request){0};
}

/* ---- test behaviours from the query string ---- */

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* %-decodes s in place ('+' stays '+'); returns the decoded length and NUL-terminates. */
static size_t pct_decode(char *s)
{
    size_t o = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        int hi = s[i] == '%' ? hexval(s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
        if (lo >= 0) {
            s[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

static bool parse_num(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || n < min || n > max) {
        return false;
    }
    *out = n;
    return true;
}

static bool parse_flag(const char *v, bool *out)
{
    long n;

    if (!parse_num(v, 0, 1, &n)) {
        return false;
    }
    *out = n == 1;
    return true;
}

/* header=Name:Value. Framing headers are refused: the stub always frames its own answer. */
static bool add_extra_header(struct params *pa, char *v)
{
    char *colon = strchr(v, ':');

    if (colon == NULL || pa->nhdr == MAX_EXTRA_HDRS) {
        return false;
    }
    *colon = '\0';
    pa->hdr_name[pa->nhdr] = v;
    pa->hdr_value[pa->nhdr] = colon + 1 + strspn(colon + 1, " ");
    if (!is_token(v) || strpbrk(colon + 1, "\r\n") != NULL ||
        strcasecmp(v, "Transfer-Encoding") == 0 || strcasecmp(v, "Content-Length") == 0) {
        return false;
    }
    if (strcasecmp(v, "Connection") == 0 && has_token(pa->hdr_value[pa->nhdr], "close")) {
        pa->close_token = true; /* we announced a close: do it */
    }
    pa->nhdr++;
    return true;
}

static bool apply_param(struct params *pa, const char *k, char *v, size_t vlen)
{
    long n = 0;
    bool ok = true;

    if (strcmp(k, "status") == 0) {
        ok = parse_num(v, 200, 599, &n);
        pa->status = (int)n;
    } else if (strcmp(k, "delay_ms") == 0) {
        ok = parse_num(v, 0, 3600000, &pa->delay_ms);
    } else if (strcmp(k, "trickle_ms") == 0) {
        ok = parse_num(v, 0, 3600000, &pa->trickle_ms);
    } else if (strcmp(k, "trickle_bytes") == 0) {
        ok = parse_num(v, 0, 1L << 30, &pa->trickle_bytes);
    } else if (strcmp(k, "body_bytes") == 0) {
        ok = parse_num(v, 0, 1L << 40, &pa->body_bytes);
    } else if (strcmp(k, "hang") == 0) {
        ok = parse_flag(v, &pa->hang);
    } else if (strcmp(k, "reset") == 0) {
        ok = parse_flag(v, &pa->reset);
    } else if (strcmp(k, "close") == 0) {
        ok = parse_flag(v, &pa->close);
    } else if (strcmp(k, "close_after_headers") == 0) {
        ok = parse_flag(v, &pa->close_after_headers);
    } else if (strcmp(k, "body") == 0) {
        pa->body = v;
        pa->body_len = vlen;
    } else if (strcmp(k, "ctype") == 0) {
        pa->ctype = v;
        ok = strpbrk(v, "\r\n") == NULL;
    } else if (strcmp(k, "header") == 0) {
        ok = add_extra_header(pa, v);
    } /* other parameters belong to the application */
    return ok;
}

/* Parses the raw query of target. Returns false on a malformed test parameter. */
static bool parse_params(const char *target, struct params *pa)
{
    const char *q = strchr(target, '?');

    pa->delay_ms = pa->trickle_ms = pa->trickle_bytes = pa->body_bytes = -1;
    if (q == NULL) {
        return true;
    }
    pa->qbuf = strdup(q + 1);
    if (pa->qbuf == NULL) {
        return false;
    }
    for (char *k = pa->qbuf, *amp; k != NULL; k = amp) {
        amp = strchr(k, '&');
        if (amp != NULL) {
            *amp++ = '\0';
        }
        char *v = strchr(k, '=');
        if (v != NULL) {
            *v++ = '\0';
        }
        pct_decode(k);
        if (!apply_param(pa, k, v ? v : k + strlen(k), v ? pct_decode(v) : 0)) {
            return false;
        }
    }
    return true;
}

/* ---- the services ---- */

static void reply_json(struct reply *rep, int status)
{
    rep->status = status;
    rep->ctype = "application/json";
    rep->body = rep->own.p;
    rep->len = rep->own.len;
}

static bool is_head(const struct request *r)
{
    return strcmp(r->method, "HEAD") == 0;
}

static bool is_get(const struct request *r)
{
    return strcmp(r->method, "GET") == 0 || is_head(r);
}

/* Matches "<prefix><id>" where id is one non-empty path segment. */
static bool match_id(const char *path, size_t plen, const char *prefix, const char **id,
                     size_t *id_len)
{
    size_t n = strlen(prefix);

    if (plen <= n || strncmp(path, prefix, n) != 0 || memchr(path + n, '/', plen - n) != NULL) {
        return false;
    }
    *id = path + n;
    *id_len = plen - n;
    return true;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool looks_like_object(const char *p, size_t n)
{
    while (n > 0 && is_space(p[n - 1])) {
        n--;
    }
    while (n > 0 && is_space(*p)) {
        p++;
        n--;
    }
    return n >= 2 && p[0] == '{' && p[n - 1] == '}';
}

static bool svc_questionnaire(const struct request *r, const char *path, size_t plen,
                              struct reply *rep)
{
    if (plen != 27 || strncmp(path, "/questionnaires/submissions", plen) != 0) {
        return false;
    }
    if (strcmp(r->method, "POST") != 0) {
        sbuf_str(&rep->own, "{\"error\":\"method not allowed\"}");
        reply_json(rep, 405);
    } else if (!looks_like_object(r->body, r->body_len)) {
        sbuf_str(&rep->own, "{\"error\":\"invalid submission\"}");
        reply_json(rep, 400);
    } else {
        uint64_t seq = atomic_fetch_add(&g.next_submission, 1) + 1;
        uint32_t tag = (uint32_t)(fnv1a(r->body, r->body_len) ^ (seq * 0x9E3779B97F4A7C15u));
        sbuf_addf(&rep->own, "{\"message\":\"success\",\"submission_id\":\"sub-%" PRIu64 "-%08x\"}",
                  seq, (unsigned)tag);
        reply_json(rep, 201);
    }
    return true;
}

static bool svc_patient_or_history(const struct conn *c, const struct request *r, const char *path,
                                   size_t plen, struct reply *rep)
{
    bool patient = c->svc == SVC_PATIENT;
    const char *id;
    size_t n;

    if (!match_id(path, plen, patient ? "/patients/" : "/history/", &id, &n)) {
        return false;
    }
    if (!is_get(r)) {
        sbuf_str(&rep->own, "{\"error\":\"method not allowed\"}");
    } else if (patient) {
        struct sbuf name = {0};
        sbuf_str(&name, "Demo Patient ");
        sbuf_add(&name, id, n);
        sbuf_str(&rep->own, "{\"id\":");
        sbuf_json(&rep->own, id, n);
        sbuf_str(&rep->own, ",\"name\":");
        sbuf_json(&rep->own, name.p, name.len);
        sbuf_str(&rep->own, ",\"birth_year\":1970,\"language\":\"de\"}");
        rep->own.oom |= name.oom;
        free(name.p);
    } else {
        sbuf_str(&rep->own, "{\"patient_id\":");
        sbuf_json(&rep->own, id, n);
        sbuf_str(&rep->own, ",\"entries\":[{\"date\":\"2026-01-05\",\"questionnaire\":\"PHQ-9\","
                            "\"score\":7},{\"date\":\"2026-02-02\",\"questionnaire\":\"GAD-7\","
                            "\"score\":4}]}");
    }
    reply_json(rep, is_get(r) ? 200 : 405);
    return true;
}

static void svc_test(const struct conn *c, const struct request *r, const char *path, size_t plen,
                     struct reply *rep)
{
    if (plen == 11 && strncmp(path, "/_echo/body", plen) == 0) {
        const char *ct = header_get(r, "Content-Type");
        rep->status = 200;
        rep->ctype = ct ? ct : "application/octet-stream";
        rep->body = r->body;
        rep->len = r->body_len;
        return;
    }
    sbuf_str(&rep->own, "{\"service\":\"test\",\"method\":");
    sbuf_json(&rep->own, r->method, strlen(r->method));
    sbuf_str(&rep->own, ",\"target\":");
    sbuf_json(&rep->own, r->target, strlen(r->target));
    sbuf_str(&rep->own, ",\"headers\":");
    sbuf_json_headers(&rep->own, r);
    sbuf_addf(&rep->own, ",\"body_len\":%zu,\"conn_id\":%" PRIu64 ",\"conn_requests\":%u}",
              r->body_len, c->id, c->requests);
    reply_json(rep, 200);
}

/* Fills rep for a path this service knows; returns false for an unknown path. */
static bool route(const struct conn *c, const struct request *r, struct reply *rep)
{
    const char *path = r->target;
    size_t plen = strcspn(path, "?");

    if (plen == 7 && strncmp(path, "/health", plen) == 0) {
        sbuf_str(&rep->own, "{\"status\":\"ok\"}");
        reply_json(rep, 200);
        return true;
    }
    if (plen == 12 && strncmp(path, "/_stub/stats", plen) == 0) {
        sbuf_addf(&rep->own,
                  "{\"connections_opened\":%" PRIuFAST64 ",\"connections_open\":%" PRIuFAST64
                  ",\"requests\":%" PRIuFAST64 "}",
                  atomic_load(&g.opened), atomic_load(&g.open), atomic_load(&g.requests));
        reply_json(rep, 200);
        return true;
    }
    switch (c->svc) {
    case SVC_QUESTIONNAIRE:
        return svc_questionnaire(r, path, plen, rep);
    case SVC_PATIENT:
    case SVC_HISTORY:
        return svc_patient_or_history(c, r, path, plen, rep);
    case SVC_TEST:
        svc_test(c, r, path, plen, rep);
        return true;
    }
    return false;
}

static void build_reply(const struct conn *c, const struct request *r, const struct params *pa,
                        struct reply *rep)
{
    if (pa->body != NULL) {
        rep->status = 200;
        rep->body = pa->body;
        rep->len = pa->body_len;
    } else if (pa->body_bytes >= 0) {
        rep->status = 200;
        rep->ctype = "application/octet-stream";
        rep->len = (size_t)pa->body_bytes;
        rep->pattern = true;
    } else if (!route(c, r, rep)) {
        if (pa->status > 0) {
            sbuf_addf(&rep->own, "{\"status\":%d}", pa->status);
        } else {
            sbuf_str(&rep->own, "{\"error\":\"not found\"}");
        }
        reply_json(rep, 404);
    }
    if (pa->status > 0) {
        rep->status = pa->status;
    }
    if (pa->ctype != NULL) {
        rep->ctype = pa->ctype;
    } else if (rep->ctype == NULL) {
        rep->ctype = "application/json";
    }
}

/* ---- answering ---- */

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
        if (!send_all(c, g.pattern + from % 26, k)) {
            return false;
        }
        from += k;
        n -= k;
    }
    return true;
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

/* Status line and headers; clen < 0 omits Content-Length (204, 304). */
static void format_head(struct sbuf *s, int status, const char *ctype, long long clen,
                        const struct params *pa, bool close)
{
    sbuf_addf(s, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (clen >= 0) {
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
static bool send_reply(struct conn *c, bool head, const struct params *pa, const struct reply *rep,
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
    if (ok && send_body) {
        ok = rep->pattern ? send_pattern(c, 0, rep->len) : send_all(c, rep->body, rep->len);
    }
    return ok;
}

/* Waits up to ms milliseconds (-1: forever) for the peer to close or reset the connection.
 * Only POLLRDHUP is asked for, so pipelined bytes do not end the wait. Returns true (and
 * marks the connection gone) if the peer left. */
static bool wait_peer_close(struct conn *c, long ms, const char *what)
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
static bool act(struct conn *c, const struct request *r, const struct params *pa, int *sent)
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

/* Answers one request; returns true to wait for another on this connection. */
static bool serve(struct conn *c, const struct request *r)
{
    struct params pa = {0};
    int sent = 0;
    bool keep = false;

    c->requests++;
    if (c->counted && !is_stub_target(r->target)) {
        atomic_fetch_add(&g.requests, 1);
        record_request(c, r);
    }
    if (!parse_params(r->target, &pa)) {
        struct reply rep = {.status = 400, .ctype = "application/json"};
        rep.body = "{\"error\":\"bad test parameter\"}";
        rep.len = strlen(rep.body);
        keep = send_reply(c, is_head(r), NULL, &rep, !r->keep_alive) && r->keep_alive;
        sent = 400;
    } else if (pa.delay_ms <= 0 || !wait_peer_close(c, pa.delay_ms, "waiting")) {
        keep = act(c, r, &pa, &sent);
    }
    log_request(c, r, sent);
    free(pa.qbuf);
    return keep;
}

/* Answers a request we could not read, then the connection closes. */
static void refuse(struct conn *c, enum rd why)
{
    struct reply rep = {.ctype = "application/json", .body = "{\"error\":\"bad request\"}"};

    rep.status = why == RD_TOOBIG ? 413 : why == RD_HEADBIG ? 431 : 400;
    if (rep.status != 400) {
        rep.body = rep.status == 413 ? "{\"error\":\"body too large\"}"
                                     : "{\"error\":\"headers too large\"}";
    }
    rep.len = strlen(rep.body);
    send_reply(c, false, NULL, &rep, true);
}

/* ---- connections ---- */

static void conn_finish(struct conn *c)
{
    pthread_mutex_lock(&g.conn_lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        g.conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&g.conn_lock);
    close(c->fd);    /* after SO_LINGER {1,0} this sends RST */
    decide(c, true); /* a connection that never sent a request is still recorded */
    if (c->counted) {
        record_conn_event(c, "close", now_us());
        atomic_fetch_sub(&g.open, 1);
    }
    free(c->in);
    free(c);
    pthread_mutex_lock(&g.conn_lock);
    g.live--;
    pthread_cond_signal(&g.conn_gone);
    pthread_mutex_unlock(&g.conn_lock);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;

    for (;;) {
        struct request r = {0};
        enum rd rc = read_request(c, &r);
        bool keep = false;
        if (rc == RD_OK) {
            keep = serve(c, &r);
        } else if (rc != RD_GONE) {
            refuse(c, rc);
        }
        request_cleanup(&r);
        if (!keep) {
            break;
        }
    }
    conn_finish(c);
    return NULL;
}

static void conn_start(int fd, enum service svc)
{
    struct conn *c = calloc(1, sizeof(*c));
    pthread_t tid;
    int one = 1;

    if (c == NULL || (c->in = malloc(4096)) == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->in_cap = 4096;
    c->fd = fd;
    c->svc = svc;
    c->t_open = now_us();
    c->id = atomic_fetch_add(&g.next_conn_id, 1) + 1;
    c->close_by = "stub";
    c->close_while = "idle";
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* trickled bytes go at once */
    pthread_mutex_lock(&g.conn_lock);
    c->next = g.conns;
    if (g.conns != NULL) {
        g.conns->prev = c;
    }
    g.conns = c;
    g.live++;
    pthread_mutex_unlock(&g.conn_lock);
    if (pthread_create(&tid, &g.attr, conn_main, c) != 0) {
        fprintf(stderr, "tg-stub: cannot start a connection thread\n");
        conn_finish(c);
    }
}

/* Wakes every connection thread (shutdown() ends blocking recv/send/poll) and waits up to
 * 3 s for them to finish, so the process exits with nothing leaked. */
static void stop_connections(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    pthread_mutex_lock(&g.conn_lock);
    for (struct conn *c = g.conns; c != NULL; c = c->next) {
        shutdown(c->fd, SHUT_RDWR);
    }
    while (g.live > 0 && pthread_cond_timedwait(&g.conn_gone, &g.conn_lock, &until) == 0) {
    }
    pthread_mutex_unlock(&g.conn_lock);
}

/* ---- startup ---- */

static bool parse_listen(const char *arg)
{
    struct listener *l = &g.ls[g.nls];
    char *end;
    long port;

    if (g.nls == MAX_LISTENERS) {
        return false;
    }
    errno = 0;
    port = strtol(arg, &end, 10);
    if (end == arg || errno != 0 || port < 0 || port > 65535 || (*end != '\0' && *end != ':')) {
        return false;
    }
    l->port = (int)port;
    l->svc = SVC_TEST;
    if (*end == ':') {
        size_t i = 0;
        while (i < 4 && strcmp(end + 1, service_names[i]) != 0) {
            i++;
        }
        if (i == 4) {
            return false;
        }
        l->svc = (enum service)i;
    }
    g.nls++;
    return true;
}

static bool parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            return false;
        }
        if (strcmp(opt, "--listen") == 0) {
            if (!parse_listen(val)) {
                return false;
            }
        } else if (strcmp(opt, "--record") == 0) {
            g.record_path = val;
        } else if (strcmp(opt, "--host") == 0) {
            g.host = val;
        } else {
            return false;
        }
    }
    return g.nls > 0;
}

static bool open_listener(struct listener *l)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->port)};
    socklen_t len = sizeof(sa);
    int one = 1;

    if (inet_pton(AF_INET, g.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "tg-stub: --host must be an IPv4 address, not '%s'\n", g.host);
        return false;
    }
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd == -1 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(l->fd, 4096) == -1 ||
        getsockname(l->fd, (struct sockaddr *)&sa, &len) == -1) {
        char what[128];
        snprintf(what, sizeof(what), "tg-stub: cannot listen on %s:%d", g.host, l->port);
        perror(what);
        return false;
    }
    l->port = ntohs(sa.sin_port);
    return true;
}

/* Accepts until SIGTERM or SIGINT arrives on sfd. */
static void accept_loop(int sfd)
{
    struct pollfd pfd[MAX_LISTENERS + 1];

    for (size_t i = 0; i < g.nls; i++) {
        pfd[i] = (struct pollfd){.fd = g.ls[i].fd, .events = POLLIN};
    }
    pfd[g.nls] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (;;) {
        if (poll(pfd, g.nls + 1, -1) == -1 && errno != EINTR) {
            perror("tg-stub: poll");
            return;
        }
        if (pfd[g.nls].revents != 0) {
            return;
        }
        for (size_t i = 0; i < g.nls; i++) {
            int fd;
            while (pfd[i].revents != 0 &&
                   (fd = accept4(g.ls[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                conn_start(fd, g.ls[i].svc);
            }
            if (pfd[i].revents != 0 && (errno == EMFILE || errno == ENFILE)) {
                poll(NULL, 0, 10); /* out of fds: back off instead of spinning */
            }
        }
    }
}

/* Blocks SIGTERM/SIGINT in every thread and returns a signalfd for them; ignores SIGPIPE. */
static int setup_process(void)
{
    struct rlimit rl;
    sigset_t set;
    struct sigaction ign = {.sa_handler = SIG_IGN};

    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one fd per connection: thousands of them */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < sizeof(g.pattern); i++) {
        g.pattern[i] = (char)('a' + i % 26);
    }
    pthread_attr_init(&g.attr);
    pthread_attr_setdetachstate(&g.attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&g.attr, THREAD_STACK);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int main(int argc, char **argv)
{
    int sfd = -1, rc = 1;

    for (size_t i = 0; i < MAX_LISTENERS; i++) {
        g.ls[i].fd = -1;
    }
    if (!parse_args(argc, argv)) {
        fprintf(stderr, "usage: tg-stub --listen PORT[:SERVICE] [--listen ...] [--record FILE]"
                        " [--host 127.0.0.1]\n  SERVICE: test (default), questionnaire, patient,"
                        " history\n");
        return 2;
    }
    sfd = setup_process();
    if (sfd == -1) {
        perror("tg-stub: signalfd");
        goto out;
    }
    if (g.record_path != NULL &&
        (g.record_fd = open(g.record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) ==
            -1) {
        perror(g.record_path);
        goto out;
    }
    for (size_t i = 0; i < g.nls; i++) {
        if (!open_listener(&g.ls[i])) {
            goto out;
        }
    }
    for (size_t i = 0; i < g.nls; i++) {
        struct sbuf s = {0};
        sbuf_addf(&s, "{\"event\":\"listening\",\"port\":%d,\"service\":\"%s\"}", g.ls[i].port,
                  service_names[g.ls[i].svc]);
        emit(STDOUT_FILENO, &s);
    }
    accept_loop(sfd);
    atomic_store(&g.stopping, true);
    for (size_t i = 0; i < g.nls; i++) {
        close(g.ls[i].fd);
        g.ls[i].fd = -1;
    }
    stop_connections();
    rc = 0;
out:
    for (size_t i = 0; i < g.nls; i++) {
        if (g.ls[i].fd >= 0) {
            close(g.ls[i].fd);
        }
    }
    if (g.record_fd >= 0) {
        close(g.record_fd);
    }
    if (sfd >= 0) {
        close(sfd);
    }
    pthread_attr_destroy(&g.attr);
    return rc;
}
