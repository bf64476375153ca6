#include "gateway/trace_context.h"

#include <assert.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/random.h"

#define TS_ENTRY_BIG 128 /* members longer than this are dropped first when truncating */
#define TS_KEY_MAX   256
#define TS_VALUE_MAX 256

static const char hex_digits[] = "0123456789abcdef";

/* 0..15 for a lower-case hex digit, -1 otherwise (W3C fields are lower case only). */
static int hex_lower_val(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* 0..15 for a hex digit of either case, -1 otherwise (plain ids come in either case). */
static int hex_any_val(unsigned char c)
{
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return hex_lower_val(c);
}

/* Decodes 2n hex digits of s into out[0..n); false on any other character. */
static bool hex_decode(const char *s, size_t n, uint8_t *out, int (*val)(unsigned char))
{
    for (size_t i = 0; i < n; i++) {
        int hi = val((unsigned char)s[2 * i]);
        int lo = val((unsigned char)s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Writes 2n hex digits of in[0..n) into out, without a NUL. */
static void hex_put(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrows s[0..*len) to drop leading and trailing spaces and tabs. */
static const char *trim_ows(const char *s, size_t *len)
{
    size_t n = *len;

    while (n > 0 && is_ows(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_ows(s[n - 1])) {
        n--;
    }
    *len = n;
    return s;
}

void tg_hex_lower(const uint8_t *in, size_t n, char *out)
{
    hex_put(in, n, out);
    out[2 * n] = '\0';
}

/* Offsets in a traceparent value: "vv-" trace-id "-" parent-id "-" flags. */
enum {
    TP_TRACE = 3,
    TP_PARENT = 36,
    TP_FLAGS = 53,
};

int tg_traceparent_parse(const char *s, size_t len, struct tg_traceparent *out)
{
    struct tg_traceparent tp;

    if (len == 0) {
        return TG_EINVAL;
    }
    s = trim_ows(s, &len);
    if (len < TG_TRACEPARENT_LEN || !hex_decode(s, 1, &tp.version, hex_lower_val)) {
        return TG_EINVAL;
    }
    /* ff is forbidden; 00 has exactly four fields; a later version may append fields, but
     * only after a dash: "cc-<trace>-<parent>-01.x" is invalid, "cc-...-01-x" is not. */
    if (tp.version == 0xff || (tp.version == 0 && len != TG_TRACEPARENT_LEN) ||
        (len > TG_TRACEPARENT_LEN && s[TG_TRACEPARENT_LEN] != '-')) {
        return TG_EINVAL;
    }
    if (s[TP_TRACE - 1] != '-' || s[TP_PARENT - 1] != '-' || s[TP_FLAGS - 1] != '-') {
        return TG_EINVAL;
    }
    if (!hex_decode(s + TP_TRACE, sizeof(tp.trace_id), tp.trace_id, hex_lower_val) ||
        !hex_decode(s + TP_PARENT, sizeof(tp.parent_id), tp.parent_id, hex_lower_val) ||
        !hex_decode(s + TP_FLAGS, 1, &tp.flags, hex_lower_val)) {
        return TG_EINVAL;
    }
    if (all_zero(tp.trace_id, sizeof(tp.trace_id)) ||
        all_zero(tp.parent_id, sizeof(tp.parent_id))) {
        return TG_EINVAL;
    }
    *out = tp;
    return TG_OK;
}

void tg_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[56])
{
    out[0] = '0';
    out[1] = '0';
    out[TP_TRACE - 1] = '-';
    hex_put(trace_id, 16, out + TP_TRACE);
    out[TP_PARENT - 1] = '-';
    hex_put(span_id, 8, out + TP_PARENT);
    out[TP_FLAGS - 1] = '-';
    hex_put(&flags, 1, out + TP_FLAGS);
    out[TG_TRACEPARENT_LEN] = '\0';
}

void tg_traceparent_format_hex(const char *trace_id, const char *span_id, uint8_t flags,
                               char out[56])
{
    out[0] = '0';
    out[1] = '0';
    out[TP_TRACE - 1] = '-';
    memcpy(out + TP_TRACE, trace_id, 32);
    out[TP_PARENT - 1] = '-';
    memcpy(out + TP_PARENT, span_id, 16);
    out[TP_FLAGS - 1] = '-';
    hex_put(&flags, 1, out + TP_FLAGS);
    out[TG_TRACEPARENT_LEN] = '\0';
}

uint8_t tg_traceparent_out_flags(uint8_t received_flags)
{
    /* sampled: the gateway records nothing itself and leaves the decision to later hops, which
     *   the spec says to express by passing the flag on unchanged (it may change only with a new
     *   parent-id, which every outgoing call has).
     * random-trace-id: when the trace-id is kept the bit MUST be kept, set or unset. A higher
     *   version is additive to 00, so its bit 1 means the same and is kept too.
     * Other bits are reserved: senders MUST set them to zero, whatever was received. */
    return received_flags & (TG_TRACE_FLAG_SAMPLED | TG_TRACE_FLAG_RANDOM);
}

/* One list-member of a tracestate, pointing into the caller's string. */
struct ts_member {
    const char *p;
    size_t len;     /* whole "key=value" */
    size_t key_len; /* up to the first '=' */
    bool keep;
};

static bool ts_is_keychar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/' || c == '@';
}

/* Level 2 key: ( lcalpha / DIGIT ) 0*255( keychar ). Level 1 keys (simple-key, and
 * tenant-id "@" system-id) are a subset, so Level 1 senders lose nothing. */
static bool ts_key_ok(const char *k, size_t n)
{
    unsigned char c0 = n > 0 ? (unsigned char)k[0] : 0;

    if (n == 0 || n > TS_KEY_MAX) {
        return false;
    }
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= '0' && c0 <= '9'))) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!ts_is_keychar((unsigned char)k[i])) {
            return false;
        }
    }
    return true;
}

/* value = 0*255( chr ) nblk-chr, chr = %x20 / nblk-chr, nblk-chr = %x21-7E but ',' and '='.
 * v was trimmed with its member, so it cannot end in a space: trailing spaces are OWS. */
static bool ts_value_ok(const char *v, size_t n)
{
    if (n == 0 || n > TS_VALUE_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') {
            return false;
        }
    }
    return true;
}

/* Checks one OWS-trimmed, non-empty member and records where its key ends. */
static bool ts_member_parse(const char *p, size_t n, struct ts_member *m)
{
    const char *eq = memchr(p, '=', n);

    if (eq == NULL) {
        return false;
    }
    m->p = p;
    m->len = n;
    m->key_len = (size_t)(eq - p);
    m->keep = true;
    return ts_key_ok(p, m->key_len) && ts_value_ok(eq + 1, n - m->key_len - 1);
}

/* Splits s on ',' into at most TG_TRACESTATE_MEMBERS valid members; returns their count or -1. */
static long ts_split(const char *s, size_t len, struct ts_member *m)
{
    size_t pos = 0;
    long count = 0;

    while (pos <= len) {
        const char *comma = memchr(s + pos, ',', len - pos);
        size_t end = comma == NULL ? len : (size_t)(comma - s);
        size_t n = end - pos;
        const char *p = trim_ows(s + pos, &n);

        if (n > 0) {
            if (count == TG_TRACESTATE_MEMBERS || !ts_member_parse(p, n, &m[count])) {
                return -1;
            }
            count++;
        }
        pos = end + 1;
    }
    return count;
}

/* Unmarks every member whose key already appeared further left. */
static void ts_drop_duplicates(struct ts_member *m, long count)
{
    for (long i = 1; i < count; i++) {
        for (long j = 0; j < i; j++) {
            if (m[j].keep && m[j].key_len == m[i].key_len &&
                memcmp(m[j].p, m[i].p, m[i].key_len) == 0) {
                m[i].keep = false;
                break;
            }
        }
    }
}

/* Length of the kept members joined with ','. */
static size_t ts_joined_len(const struct ts_member *m, long count)
{
    size_t total = 0;
    size_t kept = 0;

    for (long i = 0; i < count; i++) {
        if (m[i].keep) {
            total += m[i].len;
            kept++;
        }
    }
    return kept == 0 ? 0 : total + kept - 1;
}

/* Unmarks the right-most kept member longer than min_len; false when there is none. */
static bool ts_drop_last(struct ts_member *m, long count, size_t min_len)
{
    for (long i = count - 1; i >= 0; i--) {
        if (m[i].keep && m[i].len > min_len) {
            m[i].keep = false;
            return true;
        }
    }
    return false;
}

long tg_tracestate_normalize(const char *s, size_t len, char *out, size_t cap)
{
    struct ts_member m[TG_TRACESTATE_MEMBERS];
    long count = 0;
    size_t w = 0;

    if (cap == 0) {
        return -1;
    }
    if (len > 0) {
        count = ts_split(s, len, m);
    }
    if (count < 0) {
        return -1;
    }
    ts_drop_duplicates(m, count);
    /* The spec's truncation order: whole entries only, big ones first, then from the end. */
    while (ts_joined_len(m, count) > cap - 1) {
        if (!ts_drop_last(m, count, TS_ENTRY_BIG)) {
            (void)ts_drop_last(m, count, 0);
        }
    }
    for (long i = 0; i < count; i++) {
        if (!m[i].keep) {
            continue;
        }
        if (w > 0) {
            out[w++] = ',';
        }
        memcpy(out + w, m[i].p, m[i].len);
        w += m[i].len;
    }
    out[w] = '\0';
    return (long)w;
}

static bool is_plain_id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

bool tg_trace_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > TG_TRACE_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_plain_id_char((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Decodes the 36-character 8-4-4-4-12 form into out. */
static bool uuid_text_decode(const char *s, uint8_t out[16])
{
    static const unsigned char groups[] = {4, 2, 2, 2, 6}; /* bytes per group */
    size_t pos = 0;
    size_t b = 0;

    for (size_t g = 0; g < sizeof(groups); g++) {
        if (g > 0 && s[pos++] != '-') {
            return false;
        }
        if (!hex_decode(s + pos, groups[g], out + b, hex_any_val)) {
            return false;
        }
        pos += 2 * (size_t)groups[g];
        b += groups[g];
    }
    return true;
}

bool tg_trace_id_to_w3c(const char *s, size_t len, uint8_t out[16])
{
    uint8_t id[16];
    bool ok = false;

    if (len == 32) {
        ok = hex_decode(s, sizeof(id), id, hex_any_val);
    } else if (len == 36) {
        ok = uuid_text_decode(s, id);
    }
    if (!ok || all_zero(id, sizeof(id))) {
        return false;
    }
    memcpy(out, id, sizeof(id));
    return true;
}

void tg_trace_new_uuid(uint8_t raw[16], char out[37])
{
    static const unsigned char dash_after[] = {4, 6, 8, 10}; /* byte offsets of the dashes */
    size_t w = 0;
    size_t d = 0;

    tg_random_bytes(raw, 16);
    raw[6] = (uint8_t)((raw[6] & 0x0f) | 0x40); /* version 4 */
    raw[8] = (uint8_t)((raw[8] & 0x3f) | 0x80); /* variant 10xx (RFC 9562) */
    for (size_t i = 0; i < 16; i++) {
        if (d < sizeof(dash_after) && i == dash_after[d]) {
            out[w++] = '-';
            d++;
        }
        hex_put(raw + i, 1, out + w);
        w += 2;
    }
    assert(w == 36);
    out[w] = '\0';
}

void tg_trace_new_span(uint8_t out[8])
{
    do {
        tg_random_bytes(out, 8);
    } while (all_zero(out, 8));
}
