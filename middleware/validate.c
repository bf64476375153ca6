#include "middleware/validate.h"

#include <string.h>
#include <strings.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/uri.h"

static int fail(struct tg_req *req, int err, const char *why)
{
    req->end.detail = why;
    return err;
}

static bool all_digits(const char *v, size_t len)
{
    if (len == 0 || len > 18) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
    }
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* What the Transfer-Encoding field lines say, read as one comma list (RFC 9110 5.3). */
struct te_list {
    size_t codings; /* non-empty list elements */
    size_t chunked; /* how many of them are "chunked" */
    bool last_chunked;
};

static void te_scan(const char *v, size_t len, struct te_list *te)
{
    size_t i = 0;

    while (i <= len) {
        size_t start = i;
        size_t end;
        while (i < len && v[i] != ',') {
            i++;
        }
        end = i++;
        while (start < end && is_ows(v[start])) {
            start++;
        }
        while (end > start && is_ows(v[end - 1])) {
            end--;
        }
        if (end == start) {
            continue; /* empty list elements are ignored */
        }
        te->codings++;
        te->last_chunked = end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
        te->chunked += te->last_chunked;
    }
}

/* RFC 9112 6.3: a request whose final coding is not chunked, or that applies chunked twice,
 * has no knowable length: 400 (and the server closes). Codings before chunked are not
 * understood: 501. Only a lone "chunked" is accepted, the one spelling libmicrohttpd decodes;
 * any other, though it may mean the same, would leave the server reading the body another way. */
static int check_transfer_encoding(struct tg_req *req)
{
    struct te_list te = {0};
    size_t len = 0;

    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (kv->name_len == 17 && strncasecmp(kv->name, "Transfer-Encoding", 17) == 0) {
            te_scan(kv->value, kv->value_len, &te);
        }
    }
    if (te.chunked != 1 || !te.last_chunked) {
        return fail(req, TG_EINVAL, "chunked must be the final transfer coding, once");
    }
    if (te.codings > 1) {
        return fail(req, TG_ENOTIMPL, "unsupported transfer coding");
    }
    if (tg_req_header_count(req, "Transfer-Encoding") != 1 ||
        tg_req_header(req, "Transfer-Encoding", &len) == NULL || len != 7) {
        return fail(req, TG_EINVAL, "malformed transfer-encoding");
    }
    return TG_OK;
}

static int check_framing(struct tg_req *req)
{
    size_t n_te = tg_req_header_count(req, "Transfer-Encoding");
    size_t n_cl = tg_req_header_count(req, "Content-Length");
    size_t len;
    const char *v;

    if (n_te > 0) {
        if (strcmp(req->version, "HTTP/1.0") == 0) {
            return fail(req, TG_EINVAL, "transfer-encoding in an HTTP/1.0 request");
        }
        if (n_cl > 0) {
            return fail(req, TG_EINVAL, "both transfer-encoding and content-length");
        }
        return check_transfer_encoding(req);
    }
    if (n_cl > 1) {
        return fail(req, TG_EINVAL, "repeated content-length");
    }
    if (n_cl == 1) {
        v = tg_req_header(req, "Content-Length", &len);
        if (!all_digits(v, len)) {
            return fail(req, TG_EINVAL, "malformed content-length");
        }
    }
    return TG_OK;
}

/* Every field line is forwarded, re-written by libcurl: a name or value the next hop could
 * read another way must not pass. A name that is not a token means whitespace before the
 * colon (RFC 9112 5.1: 400) or a folded line, which libmicrohttpd 0.9.75 glues onto the name.
 * A value with CR, LF, NUL or another control character but HTAB is invalid (RFC 9110 5.5);
 * a bare CR would end the line for some upstreams and start a header of the client's choice. */
static int check_fields(struct tg_req *req)
{
    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct tg_kv *kv = &req->hdrs[i];
        if (kv->name_len == 0) {
            return fail(req, TG_EINVAL, "empty field name");
        }
        for (size_t k = 0; k < kv->name_len; k++) {
            if (!tg_http_is_tchar((unsigned char)kv->name[k])) {
                return fail(req, TG_EINVAL, "invalid character in field name");
            }
        }
        for (size_t k = 0; k < kv->value_len; k++) {
            unsigned char c = (unsigned char)kv->value[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return fail(req, TG_EINVAL, "control character in field value");
            }
        }
    }
    return TG_OK;
}

/* uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2): reg-name, IPv4 or "[IPv6]" characters.
 * Anything else (a '/', '@', space...) is a 400; the value is forwarded as X-Forwarded-Host. */
static bool is_host_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL);
}

static int check_host(struct tg_req *req)
{
    size_t n = tg_req_header_count(req, "Host");
    size_t len = 0;
    const char *v;

    if (n > 1) {
        return fail(req, TG_EINVAL, "repeated host");
    }
    if (n == 0 && strcmp(req->version, "HTTP/1.1") == 0) {
        return fail(req, TG_EINVAL, "missing host");
    }
    v = tg_req_header(req, "Host", &len);
    for (size_t i = 0; v != NULL && i < len; i++) {
        if (!is_host_char((unsigned char)v[i])) {
            return fail(req, TG_EINVAL, "invalid host");
        }
    }
    return TG_OK;
}

/* Turns "http://host/p?q" into "/p?q": servers must accept the absolute form (RFC 9112 3.2.2). */
static void to_origin_form(struct tg_req *req)
{
    const char *t = req->target;
    size_t skip;
    const char *slash;

    if (strncasecmp(t, "http://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(t, "https://", 8) == 0) {
        skip = 8;
    } else {
        return;
    }
    slash = strpbrk(t + skip, "/?");
    if (slash == NULL) {
        memcpy(req->target, "/", 2);
        req->target_len = 1;
        req->path_len = 1;
        return;
    }
    skip = (size_t)(slash - t);
    if (*slash == '?') {
        /* "http://h?q": the path is empty, which means "/". Room exists: the authority goes. */
        memmove(req->target + 1, slash, req->target_len - skip + 1);
        req->target[0] = '/';
        req->target_len = req->target_len - skip + 1;
    } else {
        memmove(req->target, slash, req->target_len - skip + 1);
        req->target_len -= skip;
    }
    slash = memchr(req->target, '?', req->target_len);
    req->path_len = slash == NULL ? req->target_len : (size_t)(slash - req->target);
}

static int check_target(struct tg_req *req)
{
    const char *p;

    to_origin_form(req);
    p = req->target;
    if (p[0] != '/') {
        return fail(req, TG_EINVAL, "request target must be a path");
    }
    for (size_t i = 0; i < req->target_len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '#') {
            return fail(req, TG_EINVAL, "invalid character in request target");
        }
    }
    /* Dot segments would let "/api/../admin" match a prefix route and reach another path
     * once the upstream normalises it: refused rather than guessed at. */
    if (tg_path_has_dot_segment(p, req->path_len)) {
        return fail(req, TG_EINVAL, "dot segment in path");
    }
    return TG_OK;
}

/* RFC 9110 9.1: the method is a token. libmicrohttpd takes whatever comes before the first
 * space; a method with a '(' or a control byte would be forwarded as it is. */
static int check_method(struct tg_req *req)
{
    const char *m = req->method;

    if (m == NULL || m[0] == '\0') {
        return fail(req, TG_EINVAL, "empty method");
    }
    for (; *m != '\0'; m++) {
        if (!tg_http_is_tchar((unsigned char)*m)) {
            return fail(req, TG_EINVAL, "method is not a token");
        }
    }
    return TG_OK;
}

static int check(struct tg_req *req)
{
    int rc = check_method(req);

    if (rc == TG_OK) {
        rc = check_fields(req);
    }
    if (rc == TG_OK) {
        rc = check_framing(req);
    }
    if (rc == TG_OK) {
        rc = check_host(req);
    }
    if (rc == TG_OK) {
        rc = check_target(req);
    }
    return rc;
}

/* The request head's size as it came: the request line and every field line with its CRLF. */
static size_t head_bytes(const struct tg_req *req)
{
    size_t n = strlen(req->method) + 1 + req->target_len + 1 + strlen(req->version) + 2 + 2;

    for (size_t i = 0; i < req->n_hdrs; i++) {
        n += req->hdrs[i].name_len + 2 + req->hdrs[i].value_len + 2;
    }
    return n;
}

static int validate_on_headers(struct tg_req *req)
{
    int rc;

    if (req->n_hdrs_seen > req->n_hdrs) {
        return fail(req, TG_EHEADERS, "too many request headers");
    }
    if (req->conf != NULL && head_bytes(req) > req->conf->max_header_bytes) {
        return fail(req, TG_EHEADERS, "request head over limits.max_header_bytes");
    }
    rc = check(req);
    return rc == TG_OK ? TG_MW_NEXT : rc;
}

const struct tg_mw_ops tg_mw_validate = {
    .name = "validate",
    .on_headers = validate_on_headers,
};
