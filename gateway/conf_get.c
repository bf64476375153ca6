#include "gateway/conf.h"

/* The typed getters and error formatting of gateway/conf.h, shared by every conf section. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/jsonpos.h"
#include "gateway/req.h"
#include "gateway/suggest.h"

/* Formats the error; key selects the key position of jpath rather than its value's. */
__attribute__((format(printf, 4, 0))) static int
conf_verror(struct tg_conf_ctx *ctx, const char *jpath, int key, const char *fmt, va_list ap)
{
    char msg[TG_CONF_ERR_MAX];
    const char *file = ctx->file != NULL ? ctx->file : "(conf)";
    int line = 0, col = 0, w;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (ctx->pos != NULL && tg_jpos_find_nearest(ctx->pos, jpath, key, &line, &col) >= 0) {
        w = snprintf(ctx->err, sizeof(ctx->err), "%s:%d:%d: %s", file, line, col, msg);
    } else {
        w = snprintf(ctx->err, sizeof(ctx->err), "%s: %s", file, msg);
    }
    if (jpath[0] != '\0' && w >= 0 && (size_t)w < sizeof(ctx->err)) {
        snprintf(ctx->err + w, sizeof(ctx->err) - (size_t)w, " (at %s)", jpath);
    }
    /* Kept to a hundred: past that, a file is not a conf with typos but something else. */
    if (ctx->all != NULL && ctx->n_errors < 100 &&
        (tg_buf_append(ctx->all, ctx->err, strlen(ctx->err)) != TG_OK ||
         tg_buf_append(ctx->all, "\n", 1) != TG_OK)) {
        ctx->all = NULL; /* out of memory: what was gathered stays */
    }
    ctx->n_errors++;
    return TG_EINVAL;
}

const char *tg_conf_did_you_mean(char *buf, size_t cap, const char *word,
                                 const char *const *candidates, size_t n)
{
    char quoted[96];
    const char *s = tg_suggest(word, candidates, n);

    buf[0] = '\0';
    if (s != NULL) {
        snprintf(buf, cap, ", did you mean %s?", tg_jpos_quote(quoted, sizeof(quoted), s));
    }
    return buf;
}

int tg_conf_error(struct tg_conf_ctx *ctx, const char *jpath, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_verror(ctx, jpath, 0, fmt, ap);
    va_end(ap);
    return TG_EINVAL;
}

int tg_conf_error_key(struct tg_conf_ctx *ctx, const char *jpath, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_verror(ctx, jpath, 1, fmt, ap);
    va_end(ap);
    return TG_EINVAL;
}

static const char *kind_name(json_type t)
{
    switch (t) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

const char *tg_conf_type_name(const json_t *v)
{
    return kind_name(json_typeof(v));
}

int tg_conf_check_keys(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                       const char *const *allowed)
{
    char path[TG_JPATH_MAX], quoted[96], hint[128];
    const char *key;
    json_t *v;
    int rc = TG_OK;

    /* the iterator API takes a non-const object but does not change it */
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0) {
            i++;
        }
        if (allowed[i] == NULL) {
            tg_jpos_path_key(path, sizeof(path), jpath, key);
            rc = tg_conf_error_key(ctx, path, "unknown key %s%s",
                                   tg_jpos_quote(quoted, sizeof(quoted), key),
                                   tg_conf_did_you_mean(hint, sizeof(hint), key, allowed, 0));
        }
    }
    return rc;
}

int tg_conf_get_json(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     json_type type, bool required, json_t **out)
{
    char path[TG_JPATH_MAX];
    json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        return required ? tg_conf_error(ctx, jpath, "missing required key \"%s\"", key) : TG_OK;
    }
    if (json_typeof(v) != type) {
        tg_jpos_path_key(path, sizeof(path), jpath, key);
        return tg_conf_error(ctx, path, "expected %s, got %s", kind_name(type),
                             kind_name(json_typeof(v)));
    }
    *out = v;
    return TG_OK;
}

int tg_conf_get_str(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                    bool required, const char **out)
{
    char path[TG_JPATH_MAX];
    json_t *v = NULL;
    int rc = tg_conf_get_json(ctx, obj, jpath, key, JSON_STRING, required, &v);

    if (rc != TG_OK || v == NULL) {
        return rc;
    }
    if (json_string_length(v) == 0) {
        tg_jpos_path_key(path, sizeof(path), jpath, key);
        tg_conf_error(ctx, path, "expected a non-empty string");
        return TG_EINVAL; /* spelled out: the analyzer does not follow variadic calls */
    }
    *out = json_string_value(v);
    return TG_OK;
}

int tg_conf_get_bool(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     bool *out)
{
    char path[TG_JPATH_MAX];
    json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        return TG_OK;
    }
    if (!json_is_boolean(v)) {
        tg_jpos_path_key(path, sizeof(path), jpath, key);
        return tg_conf_error(ctx, path, "expected true or false, got %s",
                             kind_name(json_typeof(v)));
    }
    *out = json_is_true(v);
    return TG_OK;
}

/* Reads an integer in min..max; *found says whether the key was there. */
static int get_int(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                   long long min, long long max, long long *out, bool *found)
{
    char path[TG_JPATH_MAX];
    json_t *v = json_object_get(obj, key);
    long long n;

    *found = false;
    if (v == NULL) {
        return TG_OK;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, key);
    if (!json_is_integer(v)) {
        return tg_conf_error(ctx, path, "expected an integer in %lld..%lld, got %s", min, max,
                             kind_name(json_typeof(v)));
    }
    n = (long long)json_integer_value(v);
    if (n < min || n > max) {
        return tg_conf_error(ctx, path, "expected an integer in %lld..%lld, got %lld", min, max, n);
    }
    *out = n;
    *found = true;
    return TG_OK;
}

int tg_conf_get_unsigned(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                         const char *key, unsigned min, unsigned max, unsigned *out)
{
    long long n = 0;
    bool found;
    int rc = get_int(ctx, obj, jpath, key, min, max, &n, &found);

    if (rc == TG_OK && found) {
        *out = (unsigned)n;
    }
    return rc;
}

int tg_conf_get_size(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t min, size_t max, size_t *out)
{
    long long n = 0;
    bool found;
    int rc = get_int(ctx, obj, jpath, key, (long long)min, (long long)max, &n, &found);

    if (rc == TG_OK && found) {
        *out = (size_t)n;
    }
    return rc;
}

int tg_conf_get_double(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath,
                       const char *key, double min, double max, double *out)
{
    char path[TG_JPATH_MAX];
    json_t *v = json_object_get(obj, key);
    double d;

    if (v == NULL) {
        return TG_OK;
    }
    tg_jpos_path_key(path, sizeof(path), jpath, key);
    if (!json_is_number(v)) {
        return tg_conf_error(ctx, path, "expected a number in %g..%g, got %s", min, max,
                             kind_name(json_typeof(v)));
    }
    d = json_number_value(v);
    if (!(d >= min && d <= max)) {
        return tg_conf_error(ctx, path, "expected a number in %g..%g, got %g", min, max, d);
    }
    *out = d;
    return TG_OK;
}

void tg_conf_strs_free(char **strs, size_t n)
{
    for (size_t i = 0; strs != NULL && i < n; i++) {
        free(strs[i]);
    }
    free(strs);
}

/* The array at obj.key (path set to its JSON path), refused above max entries. TG_OK with
 * *arr NULL when the key is absent. */
static int get_array(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t max, char *path, json_t **arr, size_t *len)
{
    int rc = tg_conf_get_json(ctx, obj, jpath, key, JSON_ARRAY, false, arr);

    if (rc != TG_OK || *arr == NULL) {
        return rc;
    }
    tg_jpos_path_key(path, TG_JPATH_MAX, jpath, key);
    *len = json_array_size(*arr);
    if (*len > max) {
        return tg_conf_error(ctx, path, "at most %zu entries, got %zu", max, *len);
    }
    return TG_OK;
}

int tg_conf_get_strs(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     size_t max, char ***out, size_t *n)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX];
    json_t *arr = NULL;
    char **strs;
    size_t len = 0;
    int rc = get_array(ctx, obj, jpath, key, max, path, &arr, &len);

    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    strs = calloc(len + 1, sizeof(*strs));
    if (strs == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            tg_conf_strs_free(strs, i);
            return tg_conf_error(ctx, tg_jpos_path_index(ipath, sizeof(ipath), path, i),
                                 "expected a non-empty string, got %s",
                                 json_is_string(v) ? "\"\"" : kind_name(json_typeof(v)));
        }
        strs[i] = strdup(json_string_value(v));
        if (strs[i] == NULL) {
            tg_conf_strs_free(strs, i);
            return TG_ENOMEM;
        }
    }
    tg_conf_strs_free(*out, *n);
    *out = strs;
    *n = len;
    return TG_OK;
}

int tg_conf_get_ints(struct tg_conf_ctx *ctx, const json_t *obj, const char *jpath, const char *key,
                     int min, int max, int **out, size_t *n)
{
    char path[TG_JPATH_MAX], ipath[TG_JPATH_MAX];
    json_t *arr = NULL;
    int *ints;
    size_t len = 0;
    int rc = get_array(ctx, obj, jpath, key, TG_CONF_INTS_MAX, path, &arr, &len);

    if (rc != TG_OK || arr == NULL) {
        return rc;
    }
    ints = calloc(len + 1, sizeof(*ints));
    if (ints == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        const json_t *v = json_array_get(arr, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : (json_int_t)min - 1;
        if (x < min || x > max) {
            free(ints);
            return tg_conf_error(ctx, tg_jpos_path_index(ipath, sizeof(ipath), path, i),
                                 "expected an integer in %d..%d", min, max);
        }
        ints[i] = (int)x;
    }
    free(*out);
    *out = ints;
    *n = len;
    return TG_OK;
}

bool tg_conf_is_token(const char *s)
{
    if (s[0] == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!tg_http_is_tchar((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

bool tg_conf_is_name(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= TG_CONF_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

bool tg_conf_parse_port(const char *s, size_t n, unsigned lo, unsigned *port)
{
    unsigned v = 0;

    if (n == 0 || n > 5) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < lo || v > 65535) {
        return false;
    }
    *port = v;
    return true;
}
