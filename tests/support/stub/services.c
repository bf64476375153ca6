#include "tests/support/stub/stub.h"

/* tg-stub: what each service answers: the demo ePRO services (questionnaire, patient,
 * history) and the echoing test service. */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void reply_json(struct reply *rep, int status)
{
    rep->status = status;
    rep->ctype = "application/json";
    rep->body = rep->own.p;
    rep->len = rep->own.len;
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
    } else if (ledger_submit(r, rep)) {
        /* stored once per Idempotency-Key: the ledger answered */
    } else {
        uint64_t seq = atomic_fetch_add(&stub.next_submission, 1) + 1;
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
    if (r->sunk) {
        sbuf_addf(&rep->own, "{\"body_len\":%zu,\"body_sha\":\"%016" PRIx64 "\"}", r->body_len,
                  r->body_sha);
        reply_json(rep, 200);
        return;
    }
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
    if (ledger_control(r, path, plen, rep)) {
        return true;
    }
    if (plen == 12 && strncmp(path, "/_stub/stats", plen) == 0) {
        sbuf_addf(&rep->own,
                  "{\"connections_opened\":%" PRIuFAST64 ",\"connections_open\":%" PRIuFAST64
                  ",\"requests\":%" PRIuFAST64 ",\"body_bytes_sent\":%" PRIuFAST64
                  ",\"body_bytes_sunk\":%" PRIuFAST64 "}",
                  atomic_load(&stub.opened), atomic_load(&stub.open), atomic_load(&stub.requests),
                  atomic_load(&stub.body_sent), atomic_load(&stub.body_sunk));
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
    case SVC_COLLECTOR: /* answered by collector_serve before it gets here */
        return false;
    }
    return false;
}

void build_reply(const struct conn *c, const struct request *r, const struct params *pa,
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
