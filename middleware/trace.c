#include "middleware/trace.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/random.h"
#include "gateway/stats.h"
#include "gateway/trace_context.h"

/* A plain id is taken only when its header appears exactly once with a valid value; a
 * repeated or hostile header is ignored as a whole, never partly used. */
static const char *plain_id(const struct tg_req *req, size_t *len)
{
    const struct tg_conf *c = req->conf;

    /* trace.header first, then trace.accept in order: the first name present decides. */
    for (size_t i = 0; i <= c->n_trace_accept; i++) {
        const char *name = i == 0 ? c->trace_header : c->trace_accept[i - 1];
        size_t n = tg_req_header_count(req, name);
        const char *v;

        if (n == 0) {
            continue;
        }
        if (n > 1) {
            return NULL;
        }
        v = tg_req_header(req, name, len);
        return tg_trace_id_is_valid(v, *len) ? v : NULL;
    }
    return NULL;
}

static bool is_tracestate(const struct tg_kv *kv)
{
    return tg_header_name_is(kv->name, kv->name_len, "tracestate");
}

/* Repeated tracestate headers form one list, joined with commas (RFC 9110 field lines). What
 * is passed on is the normalized list, cut to TG_TRACESTATE_MAX characters the way the spec
 * orders (a long list is cut, not dropped); an invalid list is dropped as a whole. */
static int take_tracestate(struct tg_req *req)
{
    char norm[TG_TRACESTATE_MAX + 1];
    char *joined = NULL;
    size_t cap = 0;
    size_t len = 0;
    long n;
    int rc = TG_ENOMEM;

    for (size_t i = 0; i < req->n_hdrs; i++) {
        cap += is_tracestate(&req->hdrs[i]) ? req->hdrs[i].value_len + 1 : 0;
    }
    if (cap == 0) {
        return TG_OK;
    }
    joined = malloc(cap);
    if (joined == NULL) {
        goto out;
    }
    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (!is_tracestate(kv)) {
            continue;
        }
        if (len > 0) {
            joined[len++] = ',';
        }
        memcpy(joined + len, kv->value, kv->value_len);
        len += kv->value_len;
    }
    rc = TG_OK;
    n = tg_tracestate_normalize(joined, len, norm, sizeof(norm));
    if (n > 0) {
        req->trace.state = tg_req_strndup(req, norm, (size_t)n);
        rc = req->trace.state == NULL ? TG_ENOMEM : TG_OK;
    }
out:
    free(joined);
    return rc;
}

static void set_plain(struct tg_req *req, const char *v, size_t len)
{
    memcpy(req->trace.id, v, len);
    req->trace.id[len] = '\0';
}

/* Whether a trace the gateway starts is sampled. Without span export every request is
 * recorded (logged), so sampled; with it, otlp.sample_ratio of them, decided from the trace-id
 * (OpenTelemetry's TraceIdRatioBased: its last 8 bytes as a number below ratio * 2^64), so
 * every hop that samples by ratio keeps the same traces. */
static bool sample_started(const struct tg_req *req)
{
    double ratio = req->conf->otlp_sample_ratio;
    uint64_t x = 0;

    if (req->stats == NULL || req->stats->spans == NULL || ratio >= 1.0) {
        return true;
    }
    for (int i = 8; i < 16; i++) {
        x = x << 8 | req->trace.bin[i];
    }
    /* Compared on 53 bits, what a double holds exactly. */
    return (double)(x >> 11) < ratio * 9007199254740992.0;
}

static int extract(struct tg_req *req)
{
    struct tg_traceparent tp;
    const char *tpv = NULL;
    const char *plain;
    size_t tplen = 0;
    size_t plen = 0;
    uint8_t span[8];
    uint8_t bin[16];
    bool w3c = false;

    if (tg_req_header_count(req, "traceparent") == 1) {
        tpv = tg_req_header(req, "traceparent", &tplen);
        w3c = tg_traceparent_parse(tpv, tplen, &tp) == TG_OK;
    }
    plain = plain_id(req, &plen);
    if (w3c) {
        memcpy(req->trace.bin, tp.trace_id, 16);
        req->trace.flags = tg_traceparent_out_flags(tp.flags);
        tg_hex_lower(tp.parent_id, 8, req->trace.parent);
        tg_hex_lower(req->trace.bin, 16, req->trace.w3c);
        /* The plain header is kept only when it names the same trace; else traceparent wins. */
        if (plain != NULL && tg_trace_id_to_w3c(plain, plen, bin) &&
            memcmp(bin, tp.trace_id, 16) == 0) {
            set_plain(req, plain, plen);
        } else {
            memcpy(req->trace.id, req->trace.w3c, 33);
        }
        if (take_tracestate(req) != TG_OK) {
            return TG_ENOMEM;
        }
    } else if (plain != NULL) {
        /* The gateway starts the trace and records it (every request is logged): sampled. A
         * trace-id made here is random in its right-most 7 bytes, so Level 2's random flag
         * holds; one taken from the client's id promises nothing. */
        set_plain(req, plain, plen);
        req->trace.flags = 0;
        if (!tg_trace_id_to_w3c(plain, plen, req->trace.bin)) {
            tg_random_bytes(req->trace.bin, 16);
            req->trace.flags |= TG_TRACE_FLAG_RANDOM;
        }
        tg_hex_lower(req->trace.bin, 16, req->trace.w3c);
        req->trace.flags |= sample_started(req) ? TG_TRACE_FLAG_SAMPLED : 0;
    } else {
        tg_trace_new_uuid(req->trace.bin, req->trace.id);
        tg_hex_lower(req->trace.bin, 16, req->trace.w3c);
        req->trace.flags = TG_TRACE_FLAG_RANDOM;
        req->trace.flags |= sample_started(req) ? TG_TRACE_FLAG_SAMPLED : 0;
    }
    tg_trace_new_span(span);
    tg_hex_lower(span, 8, req->trace.span);
    return TG_OK;
}

static int trace_on_headers(struct tg_req *req)
{
    return extract(req) == TG_OK ? TG_MW_NEXT : TG_ENOMEM;
}

/* Whatever the answer (proxied, error, local, early), the client gets the id back, with the
 * gateway's span as the parent it can report against. */
static void trace_on_response(struct tg_req *req)
{
    char tp[TG_TRACEPARENT_LEN + 1];

    tg_resp_add_header(&req->resp, req->conf->trace_header, req->trace.id);
    tg_traceparent_format_hex(req->trace.w3c, req->trace.span, req->trace.flags, tp);
    tg_resp_add_header(&req->resp, "traceparent", tp);
}

const struct tg_mw_ops tg_mw_trace = {
    .name = "trace",
    .on_headers = trace_on_headers,
    .on_response = trace_on_response,
};
