/* SMART on FHIR scope grammar (v1 and v2) and the grant check. */
#include "auth/scope.h"

#include <string.h>

#include "gateway/err.h"

#define SCOPES_MAX 256 /* scopes looked at in one token */

static bool has_prefix(const char *s, size_t len, const char *lit, size_t *used)
{
    size_t n = strlen(lit);

    if (len >= n && memcmp(s, lit, n) == 0) {
        *used = n;
        return true;
    }
    return false;
}

/* "patient/", "user/" or "system/": the context, and the length of the prefix in *used. */
static enum tg_scope_ctx parse_ctx(const char *s, size_t len, size_t *used)
{
    if (has_prefix(s, len, "patient/", used)) {
        return TG_SCOPE_PATIENT;
    }
    if (has_prefix(s, len, "user/", used)) {
        return TG_SCOPE_USER;
    }
    if (has_prefix(s, len, "system/", used)) {
        return TG_SCOPE_SYSTEM;
    }
    return 0;
}

/* A resource type: "*", or a FHIR type name (a capital letter, then letters). */
static bool is_type(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*') {
        return true;
    }
    if (len == 0 || len > TG_SCOPE_TYPE_MAX || s[0] < 'A' || s[0] > 'Z') {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
            return false;
        }
    }
    return true;
}

/* v1 "read", "write", "*", or v2 letters of "cruds" in that order, each at most once. */
static unsigned parse_perms(const char *s, size_t len)
{
    static const char order[] = "cruds";
    unsigned perms = 0;
    size_t at = 0;

    if (len == 4 && memcmp(s, "read", 4) == 0) {
        return TG_SCOPE_R | TG_SCOPE_S;
    }
    if (len == 5 && memcmp(s, "write", 5) == 0) {
        return TG_SCOPE_C | TG_SCOPE_U | TG_SCOPE_D;
    }
    if (len == 1 && s[0] == '*') {
        return TG_SCOPE_C | TG_SCOPE_R | TG_SCOPE_U | TG_SCOPE_D | TG_SCOPE_S;
    }
    for (size_t i = 0; i < len; i++) {
        const char *p = memchr(order + at, s[i], sizeof(order) - 1 - at);
        if (p == NULL) {
            return 0;
        }
        at = (size_t)(p - order) + 1;
        perms |= 1u << (at - 1);
    }
    return perms;
}

int tg_scope_parse(const char *s, size_t len, struct tg_scope *out)
{
    size_t used = 0;
    const char *dot;
    const char *q;
    size_t plen;

    memset(out, 0, sizeof(*out));
    out->ctx = parse_ctx(s, len, &used);
    if (out->ctx == 0) {
        return TG_EINVAL;
    }
    s += used;
    len -= used;
    q = memchr(s, '?', len);
    plen = q != NULL ? (size_t)(q - s) : len;
    dot = memchr(s, '.', plen);
    if (dot == NULL || !is_type(s, (size_t)(dot - s))) {
        return TG_EINVAL;
    }
    out->type = s;
    out->type_len = (size_t)(dot - s);
    out->perms = parse_perms(dot + 1, plen - out->type_len - 1);
    if (out->perms == 0) {
        return TG_EINVAL;
    }
    if (q != NULL) {
        out->query = q + 1;
        out->query_len = len - plen - 1;
        if (out->query_len == 0 || memchr(out->query, ' ', out->query_len) != NULL) {
            return TG_EINVAL;
        }
    }
    return TG_OK;
}

bool tg_scope_grants(const struct tg_scope *have, const struct tg_scope *need)
{
    bool any_type = have->type_len == 1 && have->type[0] == '*';

    if (have->ctx != need->ctx || (need->perms & ~have->perms) != 0) {
        return false;
    }
    if (!any_type &&
        (have->type_len != need->type_len || memcmp(have->type, need->type, need->type_len) != 0)) {
        return false;
    }
    /* A restricted grant ("?category=vital-signs") only covers a need restricted the same way. */
    return have->query == NULL || (need->query_len == have->query_len &&
                                   memcmp(need->query, have->query, have->query_len) == 0);
}

/* Remembers have as the grant when it grants one of need and is better than what was found. */
static void consider(const char *s, size_t len, const struct tg_scope *need, size_t n,
                     struct tg_scope *best, bool *found)
{
    struct tg_scope have;

    if (tg_scope_parse(s, len, &have) != TG_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (tg_scope_grants(&have, &need[i]) &&
            (!*found || (best->ctx == TG_SCOPE_PATIENT && have.ctx != TG_SCOPE_PATIENT))) {
            *best = have;
            *found = true;
            return;
        }
    }
}

bool tg_scope_find_grant(const json_t *claims, const struct tg_scope *need, size_t n,
                         struct tg_scope *granted)
{
    const json_t *scope = json_object_get(claims, "scope");
    const json_t *scp = json_object_get(claims, "scp");
    const char *s = json_string_value(scope);
    size_t seen = 0;
    bool found = false;
    size_t i;
    const json_t *v;

    for (size_t at = 0, len = s != NULL ? json_string_length(scope) : 0; at < len;) {
        size_t end = at;
        while (end < len && s[end] != ' ') {
            end++;
        }
        if (end > at && seen++ < SCOPES_MAX) {
            consider(s + at, end - at, need, n, granted, &found);
        }
        at = end + 1;
    }
    json_array_foreach(scp, i, v)
    {
        if (json_is_string(v) && seen++ < SCOPES_MAX) {
            consider(json_string_value(v), json_string_length(v), need, n, granted, &found);
        }
    }
    return found;
}
