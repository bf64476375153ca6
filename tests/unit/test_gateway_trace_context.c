/* Unit tests for middleware/trace_context.c: W3C traceparent/tracestate rules, plain ids and
 * the per-thread id generator. Vectors are written from the W3C Trace Context text (Level 1,
 * and Level 2 where it widens Level 1) and the ideas of the W3C conformance suite. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/random.h"
#include "gateway/trace_context.h"

TestSuite(trace_context, .timeout = 60);

#define TP_EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACE_HEX  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_HEX "00f067aa0ba902b7"

static const uint8_t example_trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                          0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t example_parent[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static struct cr_mem mem_of(const void *p, size_t n)
{
    return (struct cr_mem){.data = p, .size = n};
}

/* Parses a NUL-terminated traceparent. */
static int tp_parse(const char *s, struct tg_traceparent *out)
{
    return tg_traceparent_parse(s, strlen(s), out);
}

/* Normalizes a NUL-terminated tracestate into out (cap bytes). */
static long ts_norm(const char *s, char *out, size_t cap)
{
    return tg_tracestate_normalize(s, strlen(s), out, cap);
}

/* buf = prefix + n times c + suffix; returns buf. */
static char *build(char *buf, size_t cap, const char *prefix, char c, size_t n, const char *suffix)
{
    size_t p = strlen(prefix);
    size_t s = strlen(suffix);

    cr_assert(lt(sz, p + n + s, cap));
    memcpy(buf, prefix, p + 1);
    memset(buf + p, c, n);
    memcpy(buf + p + n, suffix, s + 1);
    return buf;
}

/* ---- traceparent: valid values ---- */

Test(trace_context, tp_parses_spec_example)
{
    struct tg_traceparent tp;

    cr_assert(eq(int, tp_parse(TP_EXAMPLE, &tp), TG_OK));
    cr_assert(eq(u8, tp.version, 0));
    cr_assert(eq(mem, mem_of(tp.trace_id, 16), mem_of(example_trace, 16)));
    cr_assert(eq(mem, mem_of(tp.parent_id, 8), mem_of(example_parent, 8)));
    cr_assert(eq(u8, tp.flags, 0x01));
}

Test(trace_context, tp_parses_unsampled_flags)
{
    struct tg_traceparent tp;

    cr_assert(eq(int, tp_parse("00-" TRACE_HEX "-" PARENT_HEX "-00", &tp), TG_OK));
    cr_assert(eq(u8, tp.flags, 0x00));
}

Test(trace_context, tp_keeps_all_eight_flag_bits)
{
    struct tg_traceparent tp;

    cr_assert(eq(int, tp_parse("00-" TRACE_HEX "-" PARENT_HEX "-ff", &tp), TG_OK));
    cr_assert(eq(u8, tp.flags, 0xff));
}

Test(trace_context, tp_reads_only_len_bytes)
{
    struct tg_traceparent tp;
    const char *s = TP_EXAMPLE "garbage";

    cr_assert(eq(int, tg_traceparent_parse(s, TG_TRACEPARENT_LEN, &tp), TG_OK));
    cr_assert(eq(u8, tp.flags, 0x01));
}

Test(trace_context, tp_accepts_lowest_nonzero_ids)
{
    struct tg_traceparent tp;

    cr_assert(
        eq(int, tp_parse("00-00000000000000000000000000000001-0000000000000001-00", &tp), TG_OK));
    cr_assert(eq(u8, tp.trace_id[15], 1));
    cr_assert(eq(u8, tp.parent_id[7], 1));
}

/* ---- traceparent: accepted or refused, one table ---- */

/* A traceparent value (NUL-terminated) and whether tg_traceparent_parse accepts it. */
struct tp_vector {
    const char *name;
    const char *value;
    bool valid;
};

static const struct tp_vector tp_vectors[] = {
    /* OWS around the value is ignored; CR and LF are not OWS. */
    {"OWS: leading space", " " TP_EXAMPLE, true},
    {"OWS: leading tab", "\t" TP_EXAMPLE, true},
    {"OWS: trailing space", TP_EXAMPLE " ", true},
    {"OWS: trailing tab", TP_EXAMPLE "\t", true},
    {"OWS: both sides", "\t  " TP_EXAMPLE " \t ", true},
    {"CRLF after", TP_EXAMPLE "\r\n", false},
    {"CRLF before", "\r\n" TP_EXAMPLE, false},

    /* Length: version 00 is exactly 55 characters, each field its exact width. */
    {"54 characters", "00-" TRACE_HEX "-" PARENT_HEX "-0", false},
    {"empty", "", false},
    {"OWS only", " \t ", false},
    {"v00: 56th character '-'", TP_EXAMPLE "-", false},
    {"v00: extra field", TP_EXAMPLE "-what-the-future-will-be-like", false},
    {"v00: trailing character", TP_EXAMPLE ".", false},
    {"trace-id of 31 hex", "00-4bf92f3577b34da6a3ce929d0e0e473-" PARENT_HEX "-01", false},
    {"trace-id of 33 hex", "00-4bf92f3577b34da6a3ce929d0e0e47361-" PARENT_HEX "-01", false},
    {"parent-id of 15 hex", "00-" TRACE_HEX "-00f067aa0ba902b-01", false},
    {"parent-id of 17 hex", "00-" TRACE_HEX "-00f067aa0ba902b71-01", false},
    {"flags of 1 hex", "00-" TRACE_HEX "-" PARENT_HEX "-1", false},
    {"flags of 3 hex", "00-" TRACE_HEX "-" PARENT_HEX "-001", false},
    {"version of 1 hex", "0-" TRACE_HEX "-" PARENT_HEX "-01", false},
    {"version of 3 hex", "000-" TRACE_HEX "-" PARENT_HEX "-01", false},

    /* Versions: ff is invalid; a future version may be longer if its 56th character is '-',
     * and its first four fields are still checked. */
    {"version ff", "ff-" TRACE_HEX "-" PARENT_HEX "-01", false},
    {"future version: 56 characters ending in '-'", "cc-" TRACE_HEX "-" PARENT_HEX "-01-", true},
    {"future version: 56th character '.'",
     "cc-" TRACE_HEX "-" PARENT_HEX "-01.what-the-future-will-be-like", false},
    {"future version: 56th character '0'", "cc-" TRACE_HEX "-" PARENT_HEX "-010", false},
    {"future version: 54 characters", "cc-" TRACE_HEX "-" PARENT_HEX "-0", false},
    {"future version: all-zero trace-id", "cc-00000000000000000000000000000000-" PARENT_HEX "-01-x",
     false},
    {"future version: flags not hex", "cc-" TRACE_HEX "-" PARENT_HEX "-0G-x", false},
    {"version 0a", "0a-" TRACE_HEX "-" PARENT_HEX "-01", true},
    {"version 0A (upper case)", "0A-" TRACE_HEX "-" PARENT_HEX "-01", false},
    {"version .0", ".0-" TRACE_HEX "-" PARENT_HEX "-01", false},
    {"version 0.", "0.-" TRACE_HEX "-" PARENT_HEX "-01", false},
    {"version g0", "g0-" TRACE_HEX "-" PARENT_HEX "-01", false},

    /* Fields: lower-case hex only, ids not all zero. */
    {"all-zero trace-id", "00-00000000000000000000000000000000-" PARENT_HEX "-01", false},
    {"all-zero parent-id", "00-" TRACE_HEX "-0000000000000000-01", false},
    {"upper-case trace-id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT_HEX "-01", false},
    {"trace-id ending in upper case", "00-4bf92f3577b34da6a3ce929d0e0e473A-" PARENT_HEX "-01",
     false},
    {"upper-case parent-id", "00-" TRACE_HEX "-00F067AA0BA902B7-01", false},
    {"flags 0a", "00-" TRACE_HEX "-" PARENT_HEX "-0a", true},
    {"flags 0A (upper case)", "00-" TRACE_HEX "-" PARENT_HEX "-0A", false},
    {"trace-id starting with '.'", "00-.bf92f3577b34da6a3ce929d0e0e4736-" PARENT_HEX "-01", false},
    {"trace-id ending in 'g'", "00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT_HEX "-01", false},
    {"parent-id starting with '.'", "00-" TRACE_HEX "-.0f067aa0ba902b7-01", false},
    {"parent-id ending in 'z'", "00-" TRACE_HEX "-00f067aa0ba902bz-01", false},
    {"flags '.1'", "00-" TRACE_HEX "-" PARENT_HEX "-.1", false},
};

Test(trace_context, tp_accepts_or_refuses_each_vector)
{
    for (size_t i = 0; i < sizeof(tp_vectors) / sizeof(tp_vectors[0]); i++) {
        const struct tp_vector *v = &tp_vectors[i];
        struct tg_traceparent tp;
        struct tg_traceparent before;

        memset(&tp, 0xab, sizeof(tp));
        before = tp;
        cr_expect(eq(int, tp_parse(v->value, &tp), v->valid ? TG_OK : TG_EINVAL), "%s", v->name);
        if (!v->valid) {
            cr_expect(eq(mem, mem_of(&tp, sizeof(tp)), mem_of(&before, sizeof(before))),
                      "%s: out was written", v->name);
        }
    }
}

/* ---- traceparent: versions ---- */

Test(trace_context, tp_accepts_version_01_at_55_chars)
{
    struct tg_traceparent tp;

    cr_assert(eq(int, tp_parse("01-" TRACE_HEX "-" PARENT_HEX "-01", &tp), TG_OK));
    cr_assert(eq(u8, tp.version, 0x01));
}

Test(trace_context, tp_accepts_version_fe)
{
    struct tg_traceparent tp;

    cr_assert(eq(int, tp_parse("fe-" TRACE_HEX "-" PARENT_HEX "-01", &tp), TG_OK));
    cr_assert(eq(u8, tp.version, 0xfe));
}

Test(trace_context, tp_future_version_ignores_extra_fields)
{
    struct tg_traceparent tp;

    cr_assert(eq(int,
                 tp_parse("cc-" TRACE_HEX "-" PARENT_HEX "-01-what-the-future-will-be-like", &tp),
                 TG_OK));
    cr_assert(eq(u8, tp.version, 0xcc));
    cr_assert(eq(mem, mem_of(tp.trace_id, 16), mem_of(example_trace, 16)));
    cr_assert(eq(mem, mem_of(tp.parent_id, 8), mem_of(example_parent, 8)));
    cr_assert(eq(u8, tp.flags, 0x01));
}

/* ---- traceparent: fields ---- */

Test(trace_context, tp_rejects_any_separator_but_dash)
{
    static const size_t seps[] = {2, 35, 52};
    static const char bad[] = {'_', ' ', '+', '.', '\t', '\0'};

    for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++) {
        for (size_t j = 0; j < sizeof(bad); j++) {
            char s[] = TP_EXAMPLE;
            struct tg_traceparent tp;

            s[seps[i]] = bad[j];
            cr_assert(eq(int, tg_traceparent_parse(s, TG_TRACEPARENT_LEN, &tp), TG_EINVAL),
                      "separator %zu replaced by 0x%02x", seps[i], (unsigned)bad[j]);
        }
    }
}

Test(trace_context, tp_rejects_embedded_nul)
{
    char s[] = TP_EXAMPLE;
    struct tg_traceparent tp;

    s[10] = '\0';
    cr_assert(eq(int, tg_traceparent_parse(s, TG_TRACEPARENT_LEN, &tp), TG_EINVAL));
}

Test(trace_context, tp_leaves_out_untouched_on_error)
{
    struct tg_traceparent tp;
    struct tg_traceparent before;

    memset(&tp, 0xab, sizeof(tp));
    before = tp;
    cr_assert(eq(int, tp_parse("00-" TRACE_HEX "-0000000000000000-01", &tp), TG_EINVAL));
    cr_assert(eq(mem, mem_of(&tp, sizeof(tp)), mem_of(&before, sizeof(before))));
}

/* ---- traceparent: format and flags ---- */

Test(trace_context, tp_format_writes_version_00)
{
    char out[56];

    memset(out, 'x', sizeof(out));
    tg_traceparent_format(example_trace, example_parent, 0x01, out);
    cr_assert(eq(str, out, TP_EXAMPLE));
}

Test(trace_context, tp_format_then_parse_round_trips)
{
    uint8_t trace[16];
    uint8_t span[8];
    char out[56];
    struct tg_traceparent tp;

    tg_random_bytes(trace, sizeof(trace));
    trace[0] |= 1; /* not all zero */
    tg_trace_new_span(span);
    tg_traceparent_format(trace, span, 0x03, out);
    cr_assert(eq(sz, strlen(out), TG_TRACEPARENT_LEN));
    cr_assert(eq(int, tp_parse(out, &tp), TG_OK));
    cr_assert(eq(mem, mem_of(tp.trace_id, 16), mem_of(trace, 16)));
    cr_assert(eq(mem, mem_of(tp.parent_id, 8), mem_of(span, 8)));
    cr_assert(eq(u8, tp.flags, 0x03));
}

Test(trace_context, tp_format_hex_matches_the_binary_form)
{
    uint8_t trace[16];
    uint8_t span[8];
    char trace_hex[33];
    char span_hex[17];
    char want[56];
    char got[56];

    tg_random_bytes(trace, sizeof(trace));
    tg_random_bytes(span, sizeof(span));
    tg_hex_lower(trace, 16, trace_hex);
    tg_hex_lower(span, 8, span_hex);
    tg_traceparent_format(trace, span, 0x0b, want);
    memset(got, 'x', sizeof(got));
    tg_traceparent_format_hex(trace_hex, span_hex, 0x0b, got);
    cr_assert(eq(str, got, want));
}

Test(trace_context, out_flags_keeps_sampled)
{
    cr_assert(eq(u8, tg_traceparent_out_flags(0x01), 0x01));
}

Test(trace_context, out_flags_keeps_random)
{
    cr_assert(eq(u8, tg_traceparent_out_flags(0x02), 0x02));
    cr_assert(eq(u8, tg_traceparent_out_flags(0x03), 0x03));
}

Test(trace_context, out_flags_keeps_unset_bits_unset)
{
    cr_assert(eq(u8, tg_traceparent_out_flags(0x00), 0x00));
}

Test(trace_context, out_flags_clears_reserved_bits)
{
    cr_assert(eq(u8, tg_traceparent_out_flags(0xfc), 0x00));
    cr_assert(eq(u8, tg_traceparent_out_flags(0xff), 0x03));
    cr_assert(eq(u8, tg_traceparent_out_flags(0x04), 0x00));
}

/* ---- tracestate: value in, canonical form out, one table ---- */

/* A tracestate value, what tg_tracestate_normalize returns for it with room to spare, and the
 * canonical form it writes (NULL when it returns -1). */
struct ts_vector {
    const char *name;
    const char *value;
    long want;
    const char *out;
};

static const struct ts_vector ts_vectors[] = {
    /* List structure: members joined by ",", empty ones and OWS around them dropped. */
    {"valid list", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 39,
     "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
    {"empty members", "a=1,,b=2, ,\t,", 7, "a=1,b=2"},
    {"empty value", "", 0, ""},
    {"whitespace and commas only", " \t , ,\t", 0, ""},
    {"OWS around members", "foo=1 \t , \t bar=2, \t baz=3", 17, "foo=1,bar=2,baz=3"},
    {"OWS around the only member", "\t foo=1 \t", 5, "foo=1"},
    /* Three tracestate headers joined by the caller, one of them empty. */
    {"joined headers keep their order", "foo=1,bar=2,,rojo=1,congo=2", 26,
     "foo=1,bar=2,rojo=1,congo=2"},
    {"member without '='", "foo", -1, NULL},
    {"second member without '='", "foo=a,b", -1, NULL},
    {"one empty value rejects all", "foo=1,bar=,baz=3", -1, NULL},
    {"one bad key rejects all", "@foo=1,bar=2", -1, NULL},

    /* Keys: a lower-case letter or digit, then lower-case letters, digits, '_', '-', '*', '/'
     * and '@'. */
    {"every keychar", "az09_-*/@=1", 11, "az09_-*/@=1"},
    /* Level 2 (and Level 1 tenant ids) allow a leading digit. */
    {"key starting with a digit", "1special=x", 10, "1special=x"},
    {"key starting with '@'", "@vendor=1", -1, NULL},
    {"key starting with '_'", "_a=1", -1, NULL},
    {"key starting with '-'", "-a=1", -1, NULL},
    {"key starting with '*'", "*a=1", -1, NULL},
    {"key starting with '/'", "/a=1", -1, NULL},
    {"empty key", "=1", -1, NULL},
    {"upper-case key", "FOO=1", -1, NULL},
    {"key with an upper-case letter", "fOo=1", -1, NULL},
    {"key with '.'", "foo.bar=1", -1, NULL},
    {"space before '='", "foo =1", -1, NULL},
    {"space in the key", "fo o=1", -1, NULL},
    {"key with '+'", "foo+=1", -1, NULL},
    {"key with ':'", "foo:1=1", -1, NULL},
    {"non-ASCII key", "f\xc3\xa9=1", -1, NULL},

    /* Values: printable ASCII but ',' and '=', trailing OWS dropped, never empty. */
    {"leading space in the value", "foo= 1", 6, "foo= 1"},
    {"inner space in the value", "foo=a b", 7, "foo=a b"},
    {"trailing space after the value", "foo=1 ", 5, "foo=1"},
    {"tab between value and ','", "foo=1\t,bar=2", 11, "foo=1,bar=2"},
    {"empty value of a member", "foo=", -1, NULL},
    {"space-only value", "foo= ", -1, NULL},
    {"'=' in the value", "foo=bar=baz", -1, NULL},

    /* Duplicates: the left-most member of a key is kept. */
    {"duplicate key", "foo=1,bar=2,foo=3", 11, "foo=1,bar=2"},
    {"same member twice", "foo=1,foo=1", 5, "foo=1"},
};

Test(trace_context, ts_normalizes_each_vector)
{
    for (size_t i = 0; i < sizeof(ts_vectors) / sizeof(ts_vectors[0]); i++) {
        const struct ts_vector *v = &ts_vectors[i];
        char out[64];
        long n;

        memset(out, 'x', sizeof(out));
        n = ts_norm(v->value, out, sizeof(out));
        cr_expect(eq(long, n, v->want), "%s", v->name);
        if (v->out != NULL && n >= 0) {
            cr_expect(eq(str, out, (char *)v->out), "%s", v->name);
        }
    }
}

/* ---- tracestate: list structure ---- */

/* "k00=0,k01=1,..." with n members. */
static char *ts_members(char *buf, size_t cap, int n)
{
    size_t w = 0;
    bool fits = true;

    buf[0] = '\0';
    for (int i = 0; i < n && fits; i++) {
        int k = snprintf(buf + w, cap - w, i > 0 ? ",k%02d=%d" : "k%02d=%d", i, i);

        fits = k > 0 && w + (size_t)k < cap;
        w += fits ? (size_t)k : 0;
    }
    cr_assert(fits);
    return buf;
}

Test(trace_context, ts_accepts_32_members)
{
    char in[512];
    char out[512];

    ts_members(in, sizeof(in), 32);
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), (long)strlen(in)));
    cr_assert(eq(str, out, in));
}

Test(trace_context, ts_rejects_33_members)
{
    char in[512];
    char out[512];

    ts_members(in, sizeof(in), 33);
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), -1));
}

Test(trace_context, ts_empty_members_do_not_count)
{
    char in[600];
    char body[512];
    char out[512];

    ts_members(body, sizeof(body), 32);
    snprintf(in, sizeof(in), ",, ,\t,%s,,", body);
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), (long)strlen(body)));
    cr_assert(eq(str, out, body));
}

Test(trace_context, ts_reads_only_len_bytes)
{
    char out[64];

    cr_assert(eq(long, tg_tracestate_normalize("a=1,b=2XXX", 7, out, sizeof(out)), 7));
    cr_assert(eq(str, out, "a=1,b=2"));
}

/* ---- tracestate: keys ---- */

Test(trace_context, ts_key_256_chars_accepted)
{
    char in[300];
    char out[300];

    build(in, sizeof(in), "", 'z', 256, "=1");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), 258));
}

Test(trace_context, ts_key_257_chars_rejected)
{
    char in[300];
    char out[300];

    build(in, sizeof(in), "", 'z', 257, "=1");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), -1));
}

Test(trace_context, ts_multi_tenant_keys_accepted)
{
    char in[300];
    char out[300];

    cr_assert(eq(long, ts_norm("fw529a3039@dt=x", out, sizeof(out)), 15));
    /* Level 1 limits: tenant-id up to 241 characters, system-id up to 14. */
    build(in, sizeof(in), "", 't', 241, "@vvvvvvvvvvvvvv=1");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), (long)strlen(in)));
    cr_assert(eq(str, out, in));
}

Test(trace_context, ts_level2_at_sign_keys_accepted)
{
    char in[300];
    char out[300];

    /* Level 2 keys: '@' anywhere but first, only the 256-character total counts. These were
     * invalid in Level 1 but are a strict widening, and the W3C suite now requires them. */
    cr_assert(eq(long, ts_norm("foo@=1,bar=2", out, sizeof(out)), 12));
    cr_assert(eq(long, ts_norm("foo@@bar=1", out, sizeof(out)), 10));
    cr_assert(eq(long, ts_norm("foo@bar@baz=1", out, sizeof(out)), 13));
    cr_assert(eq(long, ts_norm("t@vvvvvvvvvvvvvvv=1", out, sizeof(out)), 19));
    build(in, sizeof(in), "", 't', 242, "@v=1");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), (long)strlen(in)));
}

/* ---- tracestate: values ---- */

Test(trace_context, ts_value_256_chars_accepted)
{
    char in[300];
    char out[300];

    build(in, sizeof(in), "k=", 'v', 256, "");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), 258));
}

Test(trace_context, ts_value_257_chars_rejected)
{
    char in[300];
    char out[300];

    build(in, sizeof(in), "k=", 'v', 257, "");
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), -1));
}

/* "k=" followed by every byte 0x20..0x7e but ',' and '='; returns its length. */
static size_t all_value_chars(char in[128])
{
    size_t w = 0;

    in[w++] = 'k';
    in[w++] = '=';
    for (int c = 0x20; c <= 0x7e; c++) {
        if (c != ',' && c != '=') {
            in[w++] = (char)c;
        }
    }
    in[w] = '\0';
    return w;
}

Test(trace_context, ts_value_accepts_every_printable_but_comma_and_equals)
{
    char in[128];
    char out[128];
    size_t n = all_value_chars(in);

    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), (long)n));
    cr_assert(eq(str, out, in));
}

Test(trace_context, ts_value_rejects_control_and_non_ascii)
{
    static const char bad[] = {'\t', '\r', '\n', '\0', 0x1f, 0x7f, (char)0x80, (char)0xff};
    char out[64];

    for (size_t i = 0; i < sizeof(bad); i++) {
        char in[] = "k=a?b";

        in[3] = bad[i];
        cr_assert(eq(long, tg_tracestate_normalize(in, 5, out, sizeof(out)), -1), "byte 0x%02x",
                  (unsigned char)bad[i]);
    }
}

/* ---- tracestate: duplicates and limits ---- */

Test(trace_context, ts_duplicates_count_toward_member_limit)
{
    char in[600];
    char out[600];
    char body[512];

    ts_members(body, sizeof(body), 32);
    snprintf(in, sizeof(in), "%s,k00=again", body);
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), -1));
}

Test(trace_context, ts_fits_cap_exactly)
{
    char out[8];

    cr_assert(eq(long, ts_norm("a=1,b=2", out, 8), 7));
    cr_assert(eq(str, out, "a=1,b=2"));
}

Test(trace_context, ts_one_byte_short_drops_last_member)
{
    char out[8];

    cr_assert(eq(long, ts_norm("a=1,b=2", out, 7), 3));
    cr_assert(eq(str, out, "a=1"));
}

Test(trace_context, ts_cap_one_gives_empty_string)
{
    char out[1] = {'x'};

    cr_assert(eq(long, ts_norm("a=1", out, 1), 0));
    cr_assert(eq(chr, out[0], '\0'));
}

Test(trace_context, ts_cap_zero_is_an_error)
{
    char out[1] = {'x'};

    cr_assert(eq(long, ts_norm("a=1", out, 0), -1));
    cr_assert(eq(chr, out[0], 'x'));
}

Test(trace_context, ts_truncation_drops_entries_over_128_first)
{
    char in[300];
    char out[300];

    /* "b=" + 127 = 129 characters: big, so it goes before the right-most small member. */
    build(in, sizeof(in), "a=1,b=", 'v', 127, ",c=3");
    cr_assert(eq(long, ts_norm(in, out, strlen(in)), 7));
    cr_assert(eq(str, out, "a=1,c=3"));
}

Test(trace_context, ts_truncation_keeps_entry_of_128)
{
    char in[300];
    char out[300];

    /* "b=" + 126 = 128 characters: not big, so the right-most member goes instead. */
    char want[300];

    build(in, sizeof(in), "a=1,b=", 'v', 126, ",c=3");
    build(want, sizeof(want), "a=1,b=", 'v', 126, "");
    cr_assert(eq(long, ts_norm(in, out, strlen(in)), 132));
    cr_assert(eq(str, out, want));
}

Test(trace_context, ts_propagates_512_chars)
{
    char in[600];
    char out[TG_TRACESTATE_MAX + 1];
    char tail[300];

    /* 256 + 1 + 255 = 512 characters: the spec's minimum to propagate. */
    build(tail, sizeof(tail), ",b=", 'w', 253, "");
    build(in, sizeof(in), "a=", 'v', 254, tail);
    cr_assert(eq(sz, strlen(in), 512));
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), 512));
    cr_assert(eq(str, out, in));
}

Test(trace_context, ts_truncates_513_chars_by_whole_members)
{
    char in[600];
    char out[TG_TRACESTATE_MAX + 1];
    char tail[300];

    build(tail, sizeof(tail), ",b=", 'w', 254, "");
    build(in, sizeof(in), "a=", 'v', 254, tail);
    cr_assert(eq(sz, strlen(in), 513));
    /* Both members are over 128 characters: the right-most goes. */
    cr_assert(eq(long, ts_norm(in, out, sizeof(out)), 256));
    cr_assert(eq(int, strncmp(out, in, 256), 0));
}

/* ---- plain trace ids ---- */

static bool id_valid(const char *s)
{
    return tg_trace_id_is_valid(s, strlen(s));
}

/* A plain trace id of len bytes (it may hold a NUL) and whether tg_trace_id_is_valid accepts
 * it. */
struct id_vector {
    const char *name;
    const char *value;
    size_t len;
    bool valid;
};

/* A string literal and its length, for a vector that may hold a NUL. */
#define BYTES(literal) literal, sizeof(literal) - 1

static const struct id_vector id_vectors[] = {
    {"one character", BYTES("a"), true},
    {"empty", BYTES(""), false},
    {"every allowed class", BYTES("ABCXYZabcxyz0189._:-"), true},
    {"a UUID", BYTES("0af76519-16cd-43dd-8448-eb211c80319c"), true},
    {"colon, dot, underscore and dash", BYTES("req:2024.01_x-1"), true},
    {"CRLF and a header", BYTES("abc\r\nX-Evil: 1"), false},
    {"LF", BYTES("abc\n"), false},
    {"CR", BYTES("abc\r"), false},
    {"NUL inside", BYTES("abc\0def"), false},
    {"space inside", BYTES("abc def"), false},
    {"leading space", BYTES(" abc"), false},
    {"trailing tab", BYTES("abc\t"), false},
    {"UTF-8", BYTES("caf\xc3\xa9"), false},
    {"byte 0xff", BYTES("\xff"), false},
    /* JSON and header syntax. */
    {"'\"'", BYTES("a\"b"), false},
    {"'\\'", BYTES("a\\b"), false},
    {"','", BYTES("a,b"), false},
    {"';'", BYTES("a;b"), false},
    {"'='", BYTES("a=b"), false},
    {"'/'", BYTES("a/b"), false},
    {"braces", BYTES("a{b}"), false},
    {"'%'", BYTES("a%0d"), false},
};

Test(trace_context, id_accepts_or_refuses_each_vector)
{
    for (size_t i = 0; i < sizeof(id_vectors) / sizeof(id_vectors[0]); i++) {
        const struct id_vector *v = &id_vectors[i];

        cr_expect(eq(int, tg_trace_id_is_valid(v->value, v->len), v->valid), "%s", v->name);
    }
}

Test(trace_context, id_accepts_128_chars)
{
    char s[200];

    build(s, sizeof(s), "", 'a', 128, "");
    cr_assert(id_valid(s));
}

Test(trace_context, id_rejects_129_chars)
{
    char s[200];

    build(s, sizeof(s), "", 'a', 129, "");
    cr_assert(not(id_valid(s)));
}

/* The first byte judged, alone or inside an id, unlike the allowed set says; -1 if none. */
static int first_misjudged_byte(void)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

    for (int c = 0; c < 256; c++) {
        char s[] = "ab?cd";
        bool want = c != 0 && memchr(allowed, c, sizeof(allowed) - 1) != NULL;

        s[2] = (char)c;
        if (tg_trace_id_is_valid(s, 5) != want || tg_trace_id_is_valid(s + 2, 1) != want) {
            return c;
        }
    }
    return -1;
}

Test(trace_context, id_accepts_exactly_the_allowed_bytes)
{
    cr_assert(eq(int, first_misjudged_byte(), -1));
}

/* ---- plain id -> W3C trace-id ---- */

static const uint8_t uuid_bytes[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                       0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};

static bool to_w3c(const char *s, uint8_t out[16])
{
    return tg_trace_id_to_w3c(s, strlen(s), out);
}

/* A plain id of len bytes and whether tg_trace_id_to_w3c converts it; when it does, the bytes
 * are uuid_bytes. */
struct w3c_vector {
    const char *name;
    const char *value;
    size_t len;
    bool valid;
};

static const struct w3c_vector w3c_vectors[] = {
    {"32 hex, lower case", BYTES("0af7651916cd43dd8448eb211c80319c"), true},
    {"32 hex, upper case", BYTES("0AF7651916CD43DD8448EB211C80319C"), true},
    {"UUID, lower case", BYTES("0af76519-16cd-43dd-8448-eb211c80319c"), true},
    {"UUID, upper case", BYTES("0AF76519-16CD-43DD-8448-EB211C80319C"), true},
    {"UUID, mixed case", BYTES("0Af76519-16cD-43dd-8448-eB211c80319C"), true},
    {"all zero, 32 hex", BYTES("00000000000000000000000000000000"), false},
    {"all zero, UUID", BYTES("00000000-0000-0000-0000-000000000000"), false},
    /* Wrong lengths. */
    {"31 hex", BYTES("0af7651916cd43dd8448eb211c80319"), false},
    {"33 hex", BYTES("0af7651916cd43dd8448eb211c80319c0"), false},
    {"UUID one digit short", BYTES("0af76519-16cd-43dd-8448-eb211c80319"), false},
    {"UUID one digit long", BYTES("0af76519-16cd-43dd-8448-eb211c80319c0"), false},
    {"UUID in braces", BYTES("{0af76519-16cd-43dd-8448-eb211c80319c}"), false},
    {"empty", BYTES(""), false},
    /* Misplaced dashes. */
    {"first dash early", BYTES("0af7651-916cd-43dd-8448-eb211c80319c"), false},
    {"last dash late", BYTES("0af76519-16cd-43dd-8448e-b211c80319c"), false},
    {"dashes at the end", BYTES("0af7651916cd43dd8448eb211c80319c----"), false},
    {"underscores for dashes", BYTES("0af76519_16cd_43dd_8448_eb211c80319c"), false},
    /* Not hex. */
    {"32 characters ending in 'g'", BYTES("0af7651916cd43dd8448eb211c80319g"), false},
    {"UUID ending in 'z'", BYTES("0af76519-16cd-43dd-8448-eb211c80319z"), false},
    {"32 characters starting with '+'", BYTES("+af7651916cd43dd8448eb211c80319c"), false},
    {"not an id of either shape", BYTES("req-1234"), false},
};

Test(trace_context, w3c_converts_or_refuses_each_vector)
{
    for (size_t i = 0; i < sizeof(w3c_vectors) / sizeof(w3c_vectors[0]); i++) {
        const struct w3c_vector *v = &w3c_vectors[i];
        uint8_t id[16];
        uint8_t before[16];

        memset(id, 0xab, sizeof(id));
        memcpy(before, id, sizeof(id));
        cr_expect(eq(int, tg_trace_id_to_w3c(v->value, v->len, id), v->valid), "%s", v->name);
        cr_expect(eq(mem, mem_of(id, 16), mem_of(v->valid ? uuid_bytes : before, 16)), "%s",
                  v->name);
    }
}

Test(trace_context, w3c_accepts_lowest_nonzero)
{
    uint8_t id[16];

    cr_assert(to_w3c("00000000-0000-0000-0000-000000000001", id));
    cr_assert(eq(u8, id[15], 1));
    cr_assert(to_w3c("10000000000000000000000000000000", id));
    cr_assert(eq(u8, id[0], 0x10));
}

Test(trace_context, w3c_leaves_out_untouched_on_error)
{
    uint8_t id[16];
    uint8_t before[16];

    memset(id, 0xab, sizeof(id));
    memcpy(before, id, sizeof(id));
    cr_assert(not(to_w3c("0af7651916cd43dd8448eb211c80319g", id)));
    cr_assert(eq(mem, mem_of(id, 16), mem_of(before, 16)));
}

/* ---- hex ---- */

Test(trace_context, hex_lower_writes_digits_and_nul)
{
    static const uint8_t in[] = {0x00, 0xff, 0x10, 0xab, 0x9c};
    char out[11];

    memset(out, 'x', sizeof(out));
    tg_hex_lower(in, sizeof(in), out);
    cr_assert(eq(str, out, "00ff10ab9c"));
}

Test(trace_context, hex_lower_of_nothing_is_empty)
{
    char out[1] = {'x'};

    tg_hex_lower(NULL, 0, out);
    cr_assert(eq(chr, out[0], '\0'));
}

/* ---- generator ---- */

Test(trace_context, chacha20_rfc8439_block_vector)
{
    /* RFC 8439 section 2.3.2: key 00..1f, nonce 000000090000004a00000000, counter 1. */
    static const uint8_t want[64] = {
        0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3,
        0x20, 0x71, 0xc4, 0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03, 0x04, 0x22,
        0xaa, 0x9a, 0xc3, 0xd4, 0x6c, 0x4e, 0xd2, 0x82, 0x64, 0x46, 0x07, 0x9f, 0xaa,
        0x09, 0x14, 0xc2, 0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2, 0xb5, 0x12, 0x9c, 0xd1,
        0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e};
    static const uint8_t nonce[12] = {0, 0, 0, 0x09, 0, 0, 0, 0x4a, 0, 0, 0, 0};
    uint8_t key[32];
    uint8_t out[64];

    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
    }
    tg_random_chacha20_block(key, 1, nonce, out);
    cr_assert(eq(mem, mem_of(out, 64), mem_of(want, 64)));
}

Test(trace_context, chacha20_zero_key_vector)
{
    /* RFC 8439 appendix A.1, test vector #1: all-zero key and nonce, counter 0. */
    static const uint8_t want[16] = {0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90,
                                     0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd, 0x28};
    static const uint8_t key[32];
    static const uint8_t nonce[12];
    uint8_t out[64];

    tg_random_chacha20_block(key, 0, nonce, out);
    cr_assert(eq(mem, mem_of(out, 16), mem_of(want, 16)));
}

Test(trace_context, random_zero_length_writes_nothing)
{
    uint8_t buf[1] = {0x5a};

    tg_random_bytes(buf, 0);
    cr_assert(eq(u8, buf[0], 0x5a));
}

Test(trace_context, random_fills_every_byte_across_refills)
{
    /* Sizes around the 224-byte refill; a byte left unwritten keeps its sentinel in all four
     * runs, which random output does with probability 2^-32 per byte. */
    static const size_t sizes[] = {1, 7, 223, 224, 225, 1000};
    static const uint8_t sentinel[4] = {0x00, 0x55, 0xaa, 0xff};
    uint8_t runs[4][1000];

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (int r = 0; r < 4; r++) {
            memset(runs[r], sentinel[r], sizes[s]);
            tg_random_bytes(runs[r], sizes[s]);
        }
        for (size_t i = 0; i < sizes[s]; i++) {
            bool untouched = runs[0][i] == sentinel[0] && runs[1][i] == sentinel[1] &&
                             runs[2][i] == sentinel[2] && runs[3][i] == sentinel[3];
            cr_assert(not(untouched), "size %zu byte %zu never written", sizes[s], i);
        }
    }
}

/* Of n fresh UUIDs, how many lack version 4 or the 10xx variant, in raw or in text. */
static int uuids_with_wrong_bits(int n)
{
    int bad = 0;

    for (int i = 0; i < n; i++) {
        uint8_t raw[16];
        char text[37];

        tg_trace_new_uuid(raw, text);
        bad += (raw[6] >> 4) != 4 || (raw[8] & 0xc0) != 0x80 || text[14] != '4' ||
               strchr("89ab", text[19]) == NULL;
    }
    return bad;
}

Test(trace_context, uuid_has_version_4_and_rfc_variant)
{
    cr_assert(eq(int, uuids_with_wrong_bits(1000), 0));
}

/* True for 36 characters of lower-case hex with dashes at 8, 13, 18 and 23. */
static bool uuid_text_shape_ok(const char *text)
{
    if (strlen(text) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool ok = dash ? text[i] == '-' : strchr("0123456789abcdef", text[i]) != NULL;

        if (!ok) {
            return false;
        }
    }
    return true;
}

Test(trace_context, uuid_text_is_lowercase_8_4_4_4_12_of_raw)
{
    uint8_t raw[16];
    uint8_t back[16];
    char text[37];

    memset(text, 'x', sizeof(text));
    tg_trace_new_uuid(raw, text);
    cr_assert(uuid_text_shape_ok(text), "%s", text);
    cr_assert(tg_trace_id_to_w3c(text, 36, back));
    cr_assert(eq(mem, mem_of(back, 16), mem_of(raw, 16)));
}

enum { MANY_IDS = 100000 };

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int cmp8(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

/* Sorts n ids of size bytes and counts equal neighbours. */
static size_t count_duplicates(void *ids, size_t n, size_t size,
                               int (*cmp)(const void *, const void *))
{
    const uint8_t *p = ids;
    size_t dups = 0;

    qsort(ids, n, size, cmp);
    for (size_t i = 1; i < n; i++) {
        dups += memcmp(p + (i - 1) * size, p + i * size, size) == 0;
    }
    return dups;
}

Test(trace_context, uuids_unique_over_100k)
{
    uint8_t(*ids)[16] = malloc(sizeof(*ids) * MANY_IDS);
    char text[37];
    size_t dups;

    cr_assert(ne(ptr, ids, NULL));
    for (size_t i = 0; i < MANY_IDS; i++) {
        tg_trace_new_uuid(ids[i], text);
    }
    dups = count_duplicates(ids, MANY_IDS, sizeof(*ids), cmp16);
    free(ids);
    cr_assert(eq(sz, dups, 0));
}

Test(trace_context, spans_nonzero_and_unique_over_100k)
{
    static const uint8_t zero[8];
    uint8_t(*ids)[8] = malloc(sizeof(*ids) * MANY_IDS);
    size_t zeros = 0;
    size_t dups;

    cr_assert(ne(ptr, ids, NULL));
    for (size_t i = 0; i < MANY_IDS; i++) {
        tg_trace_new_span(ids[i]);
        zeros += memcmp(ids[i], zero, sizeof(zero)) == 0;
    }
    dups = count_duplicates(ids, MANY_IDS, sizeof(*ids), cmp8);
    free(ids);
    cr_assert(zeros == 0 && dups == 0, "%zu zero spans, %zu duplicates", zeros, dups);
}

static void *draw32(void *arg)
{
    tg_random_bytes(arg, 32);
    return NULL;
}

Test(trace_context, threads_get_different_streams)
{
    uint8_t a[32];
    uint8_t b[32];
    pthread_t ta;
    pthread_t tb;

    /* Each thread seeds its own generator; a seed shared or derived from a constant would make
     * both first draws equal. */
    cr_assert(eq(int, pthread_create(&ta, NULL, draw32, a), 0));
    cr_assert(eq(int, pthread_join(ta, NULL), 0));
    cr_assert(eq(int, pthread_create(&tb, NULL, draw32, b), 0));
    cr_assert(eq(int, pthread_join(tb, NULL), 0));
    cr_assert(ne(mem, mem_of(a, 32), mem_of(b, 32)));
}

/* Runs child(fd) in a forked process, parent_side() (if any) in this one meanwhile, and reads
 * the n bytes the child writes to fd into buf. True when the child wrote them and exited 0. */
static bool run_child(void (*child)(int fd), void (*parent_side)(void), void *buf, size_t n)
{
    int fds[2];
    int status = 0;
    bool ok;
    pid_t pid;

    if (pipe(fds) != 0) {
        return false;
    }
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(fds[1]);
        _exit(1);
    }
    close(fds[1]);
    if (parent_side != NULL) {
        parent_side();
    }
    ok = pid != -1 && read(fds[0], buf, n) == (ssize_t)n;
    close(fds[0]);
    ok = ok && waitpid(pid, &status, 0) == pid;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static uint8_t parent_bytes[32];

static void draw_in_parent(void)
{
    tg_random_bytes(parent_bytes, sizeof(parent_bytes));
}

static void draw_in_child(int fd)
{
    uint8_t child[32];

    tg_random_bytes(child, sizeof(child));
    _exit(write(fd, child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
}

Test(trace_context, forked_child_gets_a_new_stream)
{
    uint8_t child[32];

    tg_random_bytes(child, 1); /* seed before the fork, so the child inherits a state */
    cr_assert(run_child(draw_in_child, draw_in_parent, child, sizeof(child)));
    cr_assert(ne(mem, mem_of(parent_bytes, 32), mem_of(child, 32)));
}

/* ---- no system call after the first draw: a seccomp filter traps every call ---- */

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef TEST_AUDIT_ARCH
static volatile sig_atomic_t trapped_syscalls;

/* Counts a trapped call and makes it return -ENOSYS, as if the kernel lacked it. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;

    (void)sig;
    (void)si;
    trapped_syscalls++;
#if defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#else
    uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#endif
}

/* In this thread from now on, every system call but write, exit_group and rt_sigreturn (the
 * signal handler's return) raises SIGSYS instead of running. */
static int trap_all_syscalls(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return -1;
    }
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Child: seeds, traps every system call, draws 256 KiB (over a thousand refills), then makes
 * one getpid() on purpose to prove the trap counts. Reports {calls while drawing, calls after}. */
static void no_syscall_child(int fd)
{
    static uint8_t buf[4096];
    int report[2] = {-1, -1};

    tg_random_bytes(buf, 1);
    if (trap_all_syscalls() == 0) {
        for (int i = 0; i < 64; i++) {
            tg_random_bytes(buf, sizeof(buf));
        }
        report[0] = trapped_syscalls;
        (void)syscall(SYS_getpid);
        report[1] = trapped_syscalls;
    }
    /* exit_group directly: sanitizers hook _exit() and would make trapped calls there. */
    (void)syscall(SYS_exit_group,
                  write(fd, report, sizeof(report)) == (ssize_t)sizeof(report) ? 0 : 1);
    abort();
}

Test(trace_context, random_makes_no_syscall_after_first_call)
{
    int report[2] = {-2, -2};
    bool ran = run_child(no_syscall_child, NULL, report, sizeof(report));

    if (ran && report[0] == -1) {
        cr_skip_test("seccomp filters are not available here");
    }
    cr_assert(
        ran && report[0] == 0 && report[1] == 1,
        "child ok: %d, system calls while drawing: %d, trapped after a deliberate getpid(): %d",
        ran, report[0], report[1]);
}
#endif
