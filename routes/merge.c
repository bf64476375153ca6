#include "routes/merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/err.h"

/* jansson only validates here: the merged text splices the backend's own bytes, because a
 * parse and re-dump would rewrite numbers (0.1 becomes 0.10000000000000001, 1e2 becomes 100.0)
 * and jansson refuses integers beyond 64 bits that are valid JSON (read as reals instead). */
#define VALIDATE_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_valid_json(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v;

    /* A raw NUL is never valid JSON, but jansson lets one pass after a number ("[1\0]"), and the
     * bytes go out as they are. */
    if (memchr(text, '\0', len) != NULL) {
        return false;
    }
    v = json_loadb(text, len, VALIDATE_FLAGS, &jerr);
    if (v == NULL) {
        return false;
    }
    json_decref(v);
    return true;
}

/* Keeps body when it is one JSON value, with the outer whitespace trimmed off. */
static int take_json(struct tg_merge_part *p, char *body, size_t len)
{
    size_t off = 0;

    while (off < len && is_json_space(body[off])) {
        off++;
    }
    while (len > off && is_json_space(body[len - 1])) {
        len--;
    }
    if (body == NULL || len == off || !is_valid_json(body + off, len - off)) {
        free(body);
        snprintf(p->cause_buf, sizeof(p->cause_buf), "invalid json");
        return TG_EUPSTREAM;
    }
    p->body = body;
    p->json_off = off;
    p->json_len = len - off;
    return TG_OK;
}

/* The failure kind and cause of a call that brought no usable answer. */
static int transport_failure(struct tg_merge_part *p, int err, const char *detail, bool deadline)
{
    const char *cause = detail;

    switch (err) {
    case TG_ETIMEDOUT:
        cause = deadline ? "route deadline" : "timeout";
        break;
    case TG_ERESPTOOBIG:
        cause = "answer too large";
        err = TG_EUPSTREAM;
        break;
    case TG_ECANCELED:
        cause = "cancelled";
        break;
    default:
        break;
    }
    snprintf(p->cause_buf, sizeof(p->cause_buf), "%s", cause != NULL ? cause : tg_strerror(err));
    return err;
}

int tg_merge_part_set(struct tg_merge_part *p, int err, int status, char *body, size_t len,
                      const char *detail, bool deadline)
{
    p->settled = true;
    p->status = status;
    if (err != TG_OK) {
        free(body);
        p->err = transport_failure(p, err, detail, deadline);
    } else if (status < 200 || status > 299) {
        free(body);
        snprintf(p->cause_buf, sizeof(p->cause_buf), "status %d", status);
        p->err = TG_EUPSTREAM;
    } else {
        p->err = take_json(p, body, len);
    }
    p->cause = p->err == TG_OK ? NULL : p->cause_buf;
    return p->err;
}

void tg_merge_part_cleanup(struct tg_merge_part *p)
{
    free(p->body);
    memset(p, 0, sizeof(*p));
}

static bool part_ok(const struct tg_merge_part *p)
{
    return p->settled && p->err == TG_OK;
}

/* The "_errors" object as compact text, or NULL when every part succeeded. *oom tells a NULL
 * from a failed allocation. */
static char *errors_text(const struct tg_merge_part *parts, size_t n, bool *oom)
{
    json_t *errs = json_object();
    char *text = NULL;

    *oom = errs == NULL;
    for (size_t i = 0; i < n && !*oom; i++) {
        const struct tg_merge_part *p = &parts[i];
        if (part_ok(p)) {
            continue;
        }
        json_t *status = p->status > 0 ? json_integer(p->status) : json_null();
        json_t *e = json_pack("{s:s, s:o}", "error", p->settled ? p->cause : "not called", "status",
                              status);
        *oom = e == NULL || json_object_set_new(errs, p->name, e) != 0;
    }
    if (!*oom && json_object_size(errs) > 0) {
        text = json_dumps(errs, JSON_COMPACT);
        *oom = text == NULL;
    }
    json_decref(errs);
    return text;
}

/* Bytes of the merged text without the NUL. */
static size_t merged_size(const struct tg_merge_part *parts, size_t n, const char *errs)
{
    size_t size = 2; /* {} */

    for (size_t i = 0; i < n; i++) {
        size += (i > 0) + strlen(parts[i].name) + 3; /* ,"name": */
        size += part_ok(&parts[i]) ? parts[i].json_len : 4;
    }
    if (errs != NULL) {
        size += (n > 0) + strlen(TG_MERGE_ERRORS_KEY) + 3 + strlen(errs);
    }
    return size;
}

static size_t put(char *out, size_t at, const char *s, size_t len)
{
    memcpy(out + at, s, len);
    return at + len;
}

static size_t put_key(char *out, size_t at, bool comma, const char *name)
{
    at = comma ? put(out, at, ",", 1) : at;
    at = put(out, at, "\"", 1);
    at = put(out, at, name, strlen(name));
    return put(out, at, "\":", 2);
}

int tg_merge_build(const struct tg_merge_part *parts, size_t n, size_t max, char **out, size_t *len,
                   bool *complete)
{
    bool oom = false;
    char *errs = errors_text(parts, n, &oom);
    char *text = NULL;
    size_t size;
    size_t at = 0;
    int rc = TG_ENOMEM;

    if (oom) {
        goto out;
    }
    size = merged_size(parts, n, errs);
    if (size > max) {
        rc = TG_ETOOBIG;
        goto out;
    }
    text = malloc(size + 1);
    if (text == NULL) {
        goto out;
    }
    at = put(text, at, "{", 1);
    for (size_t i = 0; i < n; i++) {
        const struct tg_merge_part *p = &parts[i];
        at = put_key(text, at, i > 0, p->name);
        at = part_ok(p) ? put(text, at, p->body + p->json_off, p->json_len)
                        : put(text, at, "null", 4);
    }
    if (errs != NULL) {
        at = put_key(text, at, n > 0, TG_MERGE_ERRORS_KEY);
        at = put(text, at, errs, strlen(errs));
    }
    at = put(text, at, "}", 1);
    text[at] = '\0';
    *out = text;
    *len = at;
    *complete = errs == NULL;
    text = NULL;
    rc = TG_OK;
out:
    free(errs);
    free(text);
    return rc;
}
