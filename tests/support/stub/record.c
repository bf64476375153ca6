#include "tests/support/stub/stub.h"

/* tg-stub: output, the --record file (one JSON line per connection event) and the access
 * log lines on stdout. */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes the line with one write() under a lock, so lines from threads (and from several
 * processes sharing an O_APPEND record file) never interleave. Frees the buffer. */
void emit(int fd, struct sbuf *line)
{
    sbuf_add(line, "\n", 1);
    if (fd >= 0 && !line->oom) {
        pthread_mutex_lock(&stub.out_lock);
        ssize_t w = write(fd, line->p, line->len);
        pthread_mutex_unlock(&stub.out_lock);
        (void)w; /* nobody to tell if stdout or the record file is gone */
    }
    free(line->p);
    *line = (struct sbuf){0};
}

void record_conn_event(const struct conn *c, const char *event, uint64_t t_us)
{
    struct sbuf s = {0};

    sbuf_addf(&s, "{\"event\":\"%s\",\"conn_id\":%" PRIu64 ",\"port\":%d,\"t_us\":%" PRIu64, event,
              c->id, stub.ls[c->lidx].port, t_us);
    if (strcmp(event, "close") == 0) {
        sbuf_addf(&s, ",\"by\":\"%s\",\"while\":\"%s\"", c->close_by, c->close_while);
    }
    sbuf_str(&s, "}");
    emit(stub.record_fd, &s);
}

void record_request(const struct conn *c, const struct request *r)
{
    struct sbuf s = {0};

    sbuf_addf(&s,
              "{\"event\":\"request\",\"conn_id\":%" PRIu64 ",\"port\":%d,\"seq\":%u,"
              "\"method\":",
              c->id, stub.ls[c->lidx].port, c->requests);
    sbuf_json(&s, r->method, strlen(r->method));
    sbuf_str(&s, ",\"target\":");
    sbuf_json(&s, r->target, strlen(r->target));
    sbuf_str(&s, ",\"headers\":");
    sbuf_json_headers(&s, r);
    sbuf_addf(&s, ",\"body_len\":%zu,\"body_sha\":\"%016" PRIx64 "\",\"t_us\":%" PRIu64 "}",
              r->body_len, r->sunk ? r->body_sha : fnv1a(r->body, r->body_len), now_us());
    emit(stub.record_fd, &s);
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
void log_request(const struct conn *c, const struct request *r, int status)
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
