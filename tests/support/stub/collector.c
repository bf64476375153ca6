#include "tests/support/stub/stub.h"

/* tg-stub: the OTLP/HTTP collector stand-in (service "collector"). It keeps whole bodies in
 * the record file, so a test can check the spans field by field; they are the gateway's own
 * spans, never patient data. */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void record_otlp(const struct conn *c, const struct request *r, uint64_t seq)
{
    struct sbuf s = {0};
    const char *ct = header_get(r, "Content-Type");

    sbuf_addf(&s,
              "{\"event\":\"otlp\",\"conn_id\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"method\":", c->id,
              seq);
    sbuf_json(&s, r->method, strlen(r->method));
    sbuf_str(&s, ",\"target\":");
    sbuf_json(&s, r->target, strlen(r->target));
    sbuf_str(&s, ",\"content_type\":");
    sbuf_json(&s, ct != NULL ? ct : "", ct != NULL ? strlen(ct) : 0);
    sbuf_str(&s, ",\"body\":");
    sbuf_json(&s, r->body != NULL ? r->body : "", r->body_len);
    sbuf_addf(&s, ",\"t_us\":%" PRIu64 "}", now_us());
    emit(stub.record_fd, &s);
}

bool collector_serve(struct conn *c, const struct request *r)
{
    uint64_t seq = atomic_fetch_add(&stub.collected, 1) + 1;
    struct reply rep = {.status = 200, .ctype = "application/json", .body = "{}", .len = 2};
    long fail = 0;

    decide(c, true);
    record_otlp(c, r, seq);
    if (strncmp(r->target, "/hang/", 6) == 0) {
        wait_peer_close(c, -1, "waiting");
        log_request(c, r, 0);
        return false;
    }
    if (strncmp(r->target, "/reject/", 8) == 0) {
        rep.status = 400;
        rep.body = "{\"error\":\"bad payload\"}";
        rep.len = strlen(rep.body);
    } else if (strncmp(r->target, "/fail-", 6) == 0) {
        fail = strtol(r->target + 6, NULL, 10);
        if ((long)seq <= fail) {
            rep.status = 503;
            rep.body = "{\"error\":\"busy\"}";
            rep.len = strlen(rep.body);
        }
    }
    log_request(c, r, rep.status);
    return send_reply(c, false, NULL, &rep, !r->keep_alive) && r->keep_alive;
}
