/* Unit tests for middleware/validate.c: RFC 9112 message framing (Transfer-Encoding,
 * Content-Length), Host, field name and value grammar, and request-target checks, each on both
 * sides of its rule. The request is built by hand, as the server would fill it. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/req.h"
#include "middleware/validate.h"

#define MAX_HDRS 8

static struct tg_req req;
static struct tg_kv hdrs[MAX_HDRS];

/* Also the reset between cases of one test: frees what the previous case owned. */
static void setup(void)
{
    free(req.target);
    memset(&req, 0, sizeof(req));
    memset(hdrs, 0, sizeof(hdrs));
    req.hdrs = hdrs;
    req.version = "HTTP/1.1";
    req.method = "GET";
}

static void teardown(void)
{
    free(req.target);
    req.target = NULL;
}

TestSuite(validate, .init = setup, .fini = teardown, .timeout = 10);

/* Adds a header whose value is value_len bytes (so NUL and CR can be part of it). */
static void add_hdrn(const char *name, const char *value, size_t value_len)
{
    cr_assert(lt(sz, req.n_hdrs, (size_t)MAX_HDRS));
    hdrs[req.n_hdrs++] = (struct tg_kv){name, value, strlen(name), value_len};
}

static void add_hdr(const char *name, const char *value)
{
    add_hdrn(name, value, strlen(value));
}

/* Sets the raw request-target (owned by req, as the server does). */
static void set_target(const char *t)
{
    const char *q = strchr(t, '?');

    free(req.target);
    req.target = strdup(t);
    cr_assert_not_null(req.target);
    req.target_len = strlen(t);
    req.path_len = q == NULL ? req.target_len : (size_t)(q - t);
}

/* A valid GET / HTTP/1.1 with a Host, to which a test adds what it is about. */
static void base(void)
{
    set_target("/");
    add_hdr("Host", "gw.example");
}

static void expect_rc(int want, const char *what)
{
    int rc = tg_mw_validate.on_headers(&req);

    cr_assert(eq(int, rc, want), "%s: got %d (%s)", what, rc,
              req.end.detail == NULL ? "-" : req.end.detail);
    if (want != TG_OK) {
        cr_assert_not_null(req.end.detail, "%s: a refusal says why", what);
    }
}

/* One request with a single Transfer-Encoding value. */
static int te_rc(const char *value)
{
    setup();
    base();
    req.method = "POST";
    add_hdr("Transfer-Encoding", value);
    return tg_mw_validate.on_headers(&req);
}

/* ---- Transfer-Encoding ------------------------------------------------------------------- */

Test(validate, plain_get_passes)
{
    base();
    expect_rc(TG_OK, "GET / with Host");
}

Test(validate, te_chunked_alone_passes_in_any_case)
{
    cr_assert(eq(int, te_rc("chunked"), TG_OK));
    cr_assert(eq(int, te_rc("Chunked"), TG_OK));
    cr_assert(eq(int, te_rc("CHUNKED"), TG_OK));
}

Test(validate, te_with_content_length_is_400)
{
    base();
    add_hdr("Content-Length", "4");
    add_hdr("Transfer-Encoding", "chunked");
    expect_rc(TG_EINVAL, "CL + TE");
}

Test(validate, te_with_content_length_zero_is_400)
{
    base();
    add_hdr("Transfer-Encoding", "chunked");
    add_hdr("Content-Length", "0");
    expect_rc(TG_EINVAL, "TE + CL: 0");
}

Test(validate, te_in_http10_is_400)
{
    base();
    req.version = "HTTP/1.0";
    add_hdr("Transfer-Encoding", "chunked");
    expect_rc(TG_EINVAL, "HTTP/1.0 + TE");
}

/* RFC 9112 6.3: chunked not final (or not there) leaves the length unknown: 400. */
Test(validate, te_chunked_not_final_is_400)
{
    const char *bad[] = {
        "chunked, identity", "identity", "xchunked", "chunkedx", "gzip", "chunked, gzip",
        "chunked;q=1",       "chunk ed", "",         " ",        ","};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, te_rc(bad[i]), TG_EINVAL), "\"%s\"", bad[i]);
    }
}

Test(validate, te_chunked_twice_is_400)
{
    cr_assert(eq(int, te_rc("chunked, chunked"), TG_EINVAL));
    cr_assert(eq(int, te_rc("gzip, chunked, chunked"), TG_EINVAL));
}

/* Codings before a final chunked are valid HTTP that we do not decode: 501. */
Test(validate, te_other_codings_before_chunked_are_501)
{
    cr_assert(eq(int, te_rc("gzip, chunked"), TG_ENOTIMPL));
    cr_assert(eq(int, te_rc("gzip , chunked"), TG_ENOTIMPL));
    cr_assert(eq(int, te_rc("deflate,gzip,chunked"), TG_ENOTIMPL));
}

/* libmicrohttpd decodes only the exact value "chunked": any other spelling of the same list
 * would be framed differently by the server than by this check. */
Test(validate, te_chunked_spelled_otherwise_is_400)
{
    cr_assert(eq(int, te_rc("chunked "), TG_EINVAL));
    cr_assert(eq(int, te_rc("chunked,"), TG_EINVAL));
    cr_assert(eq(int, te_rc(", chunked"), TG_EINVAL));
    cr_assert(eq(int, te_rc("chunked\t"), TG_EINVAL));
}

Test(validate, te_two_field_lines_chunked_then_identity_is_400)
{
    base();
    add_hdr("Transfer-Encoding", "chunked");
    add_hdr("Transfer-Encoding", "identity");
    expect_rc(TG_EINVAL, "TE: chunked + TE: identity");
}

Test(validate, te_two_field_lines_chunked_twice_is_400)
{
    base();
    add_hdr("Transfer-Encoding", "chunked");
    add_hdr("transfer-encoding", "chunked");
    expect_rc(TG_EINVAL, "TE: chunked twice");
}

Test(validate, te_two_field_lines_gzip_then_chunked_is_501)
{
    base();
    add_hdr("Transfer-Encoding", "gzip");
    add_hdr("Transfer-Encoding", "chunked");
    expect_rc(TG_ENOTIMPL, "TE: gzip + TE: chunked");
}

Test(validate, te_lone_chunked_after_empty_field_line_is_400)
{
    /* The same list as "chunked", but not the one spelling the server decodes. */
    base();
    add_hdr("Transfer-Encoding", "");
    add_hdr("Transfer-Encoding", "chunked");
    expect_rc(TG_EINVAL, "TE: (empty) + TE: chunked");
}

/* ---- Content-Length ---------------------------------------------------------------------- */

static int cl_rc(const char *value)
{
    setup();
    base();
    req.method = "POST";
    add_hdr("Content-Length", value);
    return tg_mw_validate.on_headers(&req);
}

Test(validate, cl_digits_pass)
{
    cr_assert(eq(int, cl_rc("0"), TG_OK));
    cr_assert(eq(int, cl_rc("5"), TG_OK));
    cr_assert(eq(int, cl_rc("0005"), TG_OK));
    cr_assert(eq(int, cl_rc("123456789012345678"), TG_OK)); /* 18 digits: the longest */
}

Test(validate, cl_nineteen_digits_is_400)
{
    cr_assert(eq(int, cl_rc("1234567890123456789"), TG_EINVAL));
}

Test(validate, cl_sign_space_hex_list_or_empty_is_400)
{
    const char *bad[] = {"+5", "-5", "5 ", " 5", "5 5", "0x5", "5,5", "5, 5", "", "5.0", "five"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, cl_rc(bad[i]), TG_EINVAL), "\"%s\"", bad[i]);
    }
}

Test(validate, cl_repeated_same_value_is_400)
{
    base();
    add_hdr("Content-Length", "5");
    add_hdr("Content-Length", "5");
    expect_rc(TG_EINVAL, "CL: 5 twice");
}

Test(validate, cl_repeated_different_values_is_400)
{
    base();
    add_hdr("Content-Length", "3");
    add_hdr("content-length", "5");
    expect_rc(TG_EINVAL, "CL: 3 and 5");
}

/* ---- Host ---------------------------------------------------------------------------------- */

Test(validate, host_missing_in_http11_is_400)
{
    set_target("/");
    expect_rc(TG_EINVAL, "no Host in 1.1");
}

Test(validate, host_missing_in_http10_passes)
{
    set_target("/");
    req.version = "HTTP/1.0";
    expect_rc(TG_OK, "no Host in 1.0");
}

Test(validate, host_twice_is_400)
{
    base();
    add_hdr("Host", "gw.example");
    expect_rc(TG_EINVAL, "two Host lines, same value");
}

Test(validate, host_valid_forms_pass)
{
    const char *ok[] = {"gw.example", "gw.example:8080",      "127.0.0.1:1", "[::1]:80",
                        "",           "xn--bcher-kva.example"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        setup();
        set_target("/");
        add_hdr("Host", ok[i]);
        cr_expect(eq(int, tg_mw_validate.on_headers(&req), TG_OK), "Host \"%s\"", ok[i]);
    }
}

Test(validate, host_invalid_value_is_400)
{
    const char *bad[] = {"a b", "a/b", "user@host", "a\\b", "h?x", "h#x", "h\"x", "h\xc3\xa9"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        set_target("/");
        add_hdr("Host", bad[i]);
        cr_expect(eq(int, tg_mw_validate.on_headers(&req), TG_EINVAL), "Host \"%s\"", bad[i]);
    }
}

/* ---- field names and values ---------------------------------------------------------------- */

Test(validate, name_with_every_tchar_passes)
{
    base();
    add_hdr("!#$%&'*+-.^_`|~09azAZ", "v");
    expect_rc(TG_OK, "all tchars");
}

/* libmicrohttpd 0.9.75 keeps "Name : v" as the name "Name ": RFC 9112 5.1 wants a 400. */
Test(validate, name_with_whitespace_before_colon_is_400)
{
    base();
    add_hdr("Transfer-Encoding ", "chunked");
    expect_rc(TG_EINVAL, "\"Transfer-Encoding \"");
    setup();
    base();
    add_hdr("X-A\t", "1");
    expect_rc(TG_EINVAL, "\"X-A\\t\"");
}

Test(validate, name_with_separator_or_control_is_400)
{
    const char *bad[] = {"X A", "X-A: 2", "X(A",   "X/A",     "X\"A",
                         "X@A", "X\x7f",  "X\x01", "\xc3\xa9"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        base();
        add_hdr(bad[i], "v");
        cr_expect(eq(int, tg_mw_validate.on_headers(&req), TG_EINVAL), "name \"%s\"", bad[i]);
    }
}

Test(validate, empty_name_is_400)
{
    base();
    add_hdr("", "v");
    expect_rc(TG_EINVAL, "empty name");
}

Test(validate, value_with_cr_lf_or_nul_is_400)
{
    static const char cr[] = "1\rX-B: 2";
    static const char lf[] = "1\nX-B: 2";
    static const char nul[] = "abc\0def";

    base();
    add_hdrn("X-A", cr, sizeof(cr) - 1);
    expect_rc(TG_EINVAL, "bare CR");
    setup();
    base();
    add_hdrn("X-A", lf, sizeof(lf) - 1);
    expect_rc(TG_EINVAL, "LF");
    setup();
    base();
    add_hdrn("X-A", nul, sizeof(nul) - 1);
    expect_rc(TG_EINVAL, "NUL");
}

Test(validate, value_with_other_controls_is_400)
{
    const char *bad[] = {"a\x01", "a\x0b!", "a\x0c", "a\x1f", "a\x7f"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        base();
        add_hdr("X-A", bad[i]);
        cr_expect(eq(int, tg_mw_validate.on_headers(&req), TG_EINVAL), "value %zu", i);
    }
}

Test(validate, value_with_tab_space_and_obs_text_passes)
{
    base();
    add_hdr("X-A", "a\tb c");
    add_hdr("X-B", "gr\xc3\xbc\xc3\x9f \xff");
    add_hdr("X-C", "");
    add_hdr("X-D", "!~\x20\x7e");
    expect_rc(TG_OK, "HTAB, SP, obs-text, empty");
}

/* ---- request-target ------------------------------------------------------------------------ */

static int target_rc(const char *t)
{
    setup();
    add_hdr("Host", "gw.example");
    set_target(t);
    return tg_mw_validate.on_headers(&req);
}

Test(validate, dot_segments_are_400)
{
    const char *bad[] = {"/a/../b",          "/a/./b",      "/..",       "/.",        "/a/..",
                         "/a/%2e%2e/b",      "/a/%2E%2E/b", "/a/%2e./b", "/a/.%2E/b", "/a/%2e/b",
                         "/raw/../admin?x=1"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, target_rc(bad[i]), TG_EINVAL), "\"%s\"", bad[i]);
    }
}

Test(validate, dot_lookalikes_pass)
{
    const char *ok[] = {"/a/.../b",     "/a/..b",     "/a/b..",     "/.well-known/x",
                        "/a/%2e%2e%2e", "/a/%2f../b", "/a?x=/../y", "/a/b.c"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect(eq(int, target_rc(ok[i]), TG_OK), "\"%s\"", ok[i]);
    }
}

Test(validate, target_with_space_hash_or_control_is_400)
{
    const char *bad[] = {"/a b", "/a#f", "/a\x7f", "/a\x01", "/a\xc3\xa9", "a", "*"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, target_rc(bad[i]), TG_EINVAL), "target %zu", i);
    }
}

Test(validate, percent_encoding_is_kept)
{
    cr_assert(eq(int, target_rc("/raw/a%20b/%2F?x=%00"), TG_OK));
    cr_assert(eq(str, req.target, "/raw/a%20b/%2F?x=%00"));
}

Test(validate, absolute_form_becomes_origin_form)
{
    cr_assert(eq(int, target_rc("http://gw.example/raw/x?q=1"), TG_OK));
    cr_assert(eq(str, req.target, "/raw/x?q=1"));
    cr_assert(eq(sz, req.target_len, strlen("/raw/x?q=1")));
    cr_assert(eq(sz, req.path_len, strlen("/raw/x")));
}

Test(validate, absolute_form_scheme_is_case_insensitive_and_https_works)
{
    cr_assert(eq(int, target_rc("HTTPS://gw.example:8443/p"), TG_OK));
    cr_assert(eq(str, req.target, "/p"));
    cr_assert(eq(sz, req.path_len, 2));
}

Test(validate, absolute_form_without_path_is_slash)
{
    cr_assert(eq(int, target_rc("http://gw.example"), TG_OK));
    cr_assert(eq(str, req.target, "/"));
    cr_assert(eq(sz, req.path_len, 1));
    cr_assert(eq(int, target_rc("http://gw.example?q=1"), TG_OK));
    cr_assert(eq(str, req.target, "/?q=1"));
    cr_assert(eq(sz, req.target_len, 5));
    cr_assert(eq(sz, req.path_len, 1));
}

Test(validate, absolute_form_dot_segments_are_400)
{
    cr_assert(eq(int, target_rc("http://gw.example/a/../b"), TG_EINVAL));
}

Test(validate, other_schemes_are_400)
{
    cr_assert(eq(int, target_rc("ftp://gw.example/p"), TG_EINVAL));
}
