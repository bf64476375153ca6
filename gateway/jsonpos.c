#include "gateway/jsonpos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/err.h"

#define JPOS_DEPTH_MAX 2048 /* jansson's own nesting limit */
#define QUOTE_MAX      64

/* A string being built: grows on the heap, or truncates into a caller's fixed buffer. */
struct sink {
    char *buf;
    size_t len, cap;
    int grow; /* nonzero: realloc as needed */
    int full; /* out of memory (growing) or truncated (fixed): further writes are dropped */
};

struct jentry {
    char *path; /* owned */
    size_t len;
    int line, col;   /* where the value starts */
    int kline, kcol; /* where the key starts; 0 for array elements and the document */
};

struct tg_jpos {
    struct jentry *v; /* owned, in text order */
    size_t n, cap;
};

struct scan {
    const char *p, *end;
    int line, col; /* col: characters already read on this line */
    int depth;
    struct tg_jpos *pos; /* borrowed */
    struct sink path;    /* owned, growing: path of the value being read */
    struct sink key;     /* owned, growing: decoded key of the member being read */
};

static void sink_putn(struct sink *s, const char *p, size_t n)
{
    if (s->full) {
        return;
    }
    if (s->len + n + 1 > s->cap) {
        if (!s->grow) {
            n = s->cap > s->len + 1 ? s->cap - s->len - 1 : 0;
            s->full = 1;
        } else {
            size_t cap = s->cap * 2 > s->len + n + 1 ? s->cap * 2 : s->len + n + 1 + 32;
            char *buf = realloc(s->buf, cap);
            if (buf == NULL) {
                s->full = 1;
                return;
            }
            s->buf = buf;
            s->cap = cap;
        }
    }
    if (s->cap == 0) {
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void sink_puts(struct sink *s, const char *p)
{
    sink_putn(s, p, strlen(p));
}

static void sink_truncate(struct sink *s, size_t len)
{
    s->len = len;
    if (s->buf != NULL) {
        s->buf[len] = '\0';
    }
}

/* Writes k (n bytes) as a JSON string literal with quotes. */
static void put_json_string(struct sink *s, const char *k, size_t n)
{
    char esc[8];

    sink_putn(s, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sink_putn(s, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            sink_puts(s, esc);
        } else {
            sink_putn(s, k + i, 1);
        }
    }
    sink_putn(s, "\"", 1);
}

static int key_is_plain(const char *k, size_t n)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c == 0x7f || strchr(".[]\"\\", c) != NULL) {
            return 0;
        }
    }
    return 1;
}

/* Appends member key k (n bytes) to the path in s; see the spelling rule in the header. */
static void put_key(struct sink *s, const char *k, size_t n)
{
    if (key_is_plain(k, n)) {
        if (s->len > 0) {
            sink_putn(s, ".", 1);
        }
        sink_putn(s, k, n);
        return;
    }
    sink_putn(s, "[", 1);
    put_json_string(s, k, n);
    sink_putn(s, "]", 1);
}

static void put_index(struct sink *s, size_t i)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "[%zu]", i);
    sink_puts(s, buf);
}

/* Consumes one byte, keeping line and column the way jansson counts them: '\n' starts a line,
 * and only bytes that can start a UTF-8 sequence take a column. */
static void bump(struct scan *s)
{
    unsigned char c = (unsigned char)*s->p++;

    if (c == '\n') {
        s->line++;
        s->col = 0;
    } else if (c < 0x80 || (c >= 0xC2 && c <= 0xF4)) {
        s->col++;
    }
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && strchr(" \t\r\n", *s->p) != NULL && *s->p != '\0') {
        bump(s);
    }
}

static int peek(const struct scan *s)
{
    return s->p < s->end ? (unsigned char)*s->p : -1;
}

static int add_entry(struct scan *s, int kline, int kcol)
{
    struct tg_jpos *pos = s->pos;
    struct jentry *e;

    if (s->path.full) {
        return TG_ENOMEM;
    }
    if (pos->n == pos->cap) {
        size_t cap = pos->cap ? pos->cap * 2 : 64;
        struct jentry *v = realloc(pos->v, cap * sizeof(*v));
        if (v == NULL) {
            return TG_ENOMEM;
        }
        pos->v = v;
        pos->cap = cap;
    }
    e = &pos->v[pos->n];
    e->path = malloc(s->path.len + 1);
    if (e->path == NULL) {
        return TG_ENOMEM;
    }
    memcpy(e->path, s->path.len ? s->path.buf : "", s->path.len + 1);
    e->len = s->path.len;
    e->line = s->line;
    e->col = s->col + 1;
    e->kline = kline;
    e->kcol = kcol;
    pos->n++;
    return TG_OK;
}

static int hex4(struct scan *s, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        int c = peek(s);
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return TG_EINVAL;
        }
        v = v * 16 + (unsigned)d;
        bump(s);
    }
    *out = v;
    return TG_OK;
}

static void put_utf8(struct sink *out, unsigned cp)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sink_putn(out, b, n);
}

/* Reads \uXXXX (the "\u" already consumed), joining a surrogate pair as jansson does. */
static int read_unicode(struct scan *s, struct sink *out)
{
    unsigned cp, lo;

    if (hex4(s, &cp) != TG_OK) {
        return TG_EINVAL;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF && s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
        bump(s);
        bump(s);
        if (hex4(s, &lo) != TG_OK) {
            return TG_EINVAL;
        }
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else {
            put_utf8(out, cp);
            cp = lo;
        }
    }
    put_utf8(out, cp);
    return TG_OK;
}

/* Reads a string token; out (may be NULL) receives the decoded bytes. */
static int read_string(struct scan *s, struct sink *out)
{
    struct sink none = {0};

    if (out == NULL) {
        out = &none; /* cap 0, fixed: swallows everything */
    }
    bump(s); /* opening quote */
    for (;;) {
        int c = peek(s);
        if (c < 0) {
            return TG_EINVAL;
        }
        if (c == '"') {
            bump(s);
            return out->full && out->grow ? TG_ENOMEM : TG_OK;
        }
        if (c != '\\') {
            sink_putn(out, s->p, 1);
            bump(s);
            continue;
        }
        bump(s);
        c = peek(s);
        if (c < 0) {
            return TG_EINVAL;
        }
        bump(s);
        if (c == 'u') {
            if (read_unicode(s, out) != TG_OK) {
                return TG_EINVAL;
            }
            continue;
        }
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = strchr(from, c);
        if (at == NULL || c == 0) {
            return TG_EINVAL;
        }
        sink_putn(out, to + (at - from), 1);
    }
}

static int read_value(struct scan *s, int kline, int kcol);

static int read_member(struct scan *s)
{
    size_t saved = s->path.len;
    int kline = s->line, kcol = s->col + 1;
    int rc;

    if (peek(s) != '"') {
        return TG_EINVAL;
    }
    sink_truncate(&s->key, 0);
    rc = read_string(s, &s->key);
    if (rc != TG_OK) {
        return rc;
    }
    skip_ws(s);
    if (peek(s) != ':') {
        return TG_EINVAL;
    }
    bump(s);
    put_key(&s->path, s->key.len ? s->key.buf : "", s->key.len);
    rc = read_value(s, kline, kcol);
    sink_truncate(&s->path, saved);
    return rc;
}

/* Reads an object or an array (the opening bracket is next). */
static int read_container(struct scan *s)
{
    int close = peek(s) == '{' ? '}' : ']';
    size_t saved = s->path.len;
    int rc;

    if (++s->depth > JPOS_DEPTH_MAX) {
        return TG_EINVAL;
    }
    bump(s);
    skip_ws(s);
    if (peek(s) == close) {
        bump(s);
        s->depth--;
        return TG_OK;
    }
    for (size_t i = 0;; i++) {
        skip_ws(s);
        if (close == '}') {
            rc = read_member(s);
        } else {
            put_index(&s->path, i);
            rc = read_value(s, 0, 0);
            sink_truncate(&s->path, saved);
        }
        if (rc != TG_OK) {
            return rc;
        }
        skip_ws(s);
        if (peek(s) == close) {
            bump(s);
            s->depth--;
            return TG_OK;
        }
        if (peek(s) != ',') {
            return TG_EINVAL;
        }
        bump(s);
    }
}

/* Records the value at the current path, then reads over it. */
static int read_value(struct scan *s, int kline, int kcol)
{
    int c, rc;

    skip_ws(s);
    c = peek(s);
    if (c < 0 || c == ',' || c == ']' || c == '}' || c == ':') {
        return TG_EINVAL;
    }
    rc = add_entry(s, kline, kcol);
    if (rc != TG_OK) {
        return rc;
    }
    if (c == '{' || c == '[') {
        return read_container(s);
    }
    if (c == '"') {
        return read_string(s, NULL);
    }
    /* number, true, false, null: jansson has checked them; only their extent matters here */
    while (s->p < s->end && strchr(",]}: \t\r\n", *s->p) == NULL) {
        bump(s);
    }
    return TG_OK;
}

struct tg_jpos *tg_jpos_build(const char *text, size_t len)
{
    struct scan s = {.p = text, .end = text + len, .line = 1, .col = 0};
    struct tg_jpos *pos = calloc(1, sizeof(*pos));
    int rc;

    if (pos == NULL) {
        return NULL;
    }
    s.pos = pos;
    s.path.grow = 1;
    s.key.grow = 1;
    rc = read_value(&s, 0, 0);
    free(s.path.buf);
    free(s.key.buf);
    if (rc == TG_ENOMEM) {
        tg_jpos_free(pos);
        return NULL;
    }
    /* TG_EINVAL: keep what was indexed before the error */
    return pos;
}

void tg_jpos_free(struct tg_jpos *pos)
{
    if (pos == NULL) {
        return;
    }
    for (size_t i = 0; i < pos->n; i++) {
        free(pos->v[i].path);
    }
    free(pos->v);
    free(pos);
}

static const struct jentry *lookup(const struct tg_jpos *pos, const char *path, size_t len)
{
    for (size_t i = 0; i < pos->n; i++) {
        const struct jentry *e = &pos->v[i];
        if (e->len == len && memcmp(e->path, path, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void entry_pos(const struct jentry *e, int key, int *line, int *col)
{
    if (key && e->kline > 0) {
        *line = e->kline;
        *col = e->kcol;
    } else {
        *line = e->line;
        *col = e->col;
    }
}

int tg_jpos_find(const struct tg_jpos *pos, const char *path, int *line, int *col)
{
    const struct jentry *e = lookup(pos, path, strlen(path));

    if (e == NULL) {
        return TG_EINVAL;
    }
    entry_pos(e, 0, line, col);
    return TG_OK;
}

int tg_jpos_find_key(const struct tg_jpos *pos, const char *path, int *line, int *col)
{
    const struct jentry *e = lookup(pos, path, strlen(path));

    if (e == NULL) {
        return TG_EINVAL;
    }
    entry_pos(e, 1, line, col);
    return TG_OK;
}

/* Index just past the path component starting at p[i] (".key", "key" at 0, "[3]", "[\"k\"]"). */
static size_t component_end(const char *p, size_t i, size_t n)
{
    size_t j;

    if (p[i] == '[' && i + 1 < n && p[i + 1] == '"') {
        for (j = i + 2; j < n && p[j] != '"'; j++) {
            if (p[j] == '\\') {
                j++;
            }
        }
        j += 2; /* closing quote and bracket */
        return j < n ? j : n;
    }
    if (p[i] == '[') {
        for (j = i + 1; j < n && p[j] != ']'; j++) {
        }
        return j < n ? j + 1 : n;
    }
    for (j = i + 1; j < n && p[j] != '.' && p[j] != '['; j++) {
    }
    return j;
}

long tg_jpos_find_nearest(const struct tg_jpos *pos, const char *path, int key, int *line, int *col)
{
    size_t full = strlen(path), cur = full;

    for (;;) {
        const struct jentry *e = lookup(pos, path, cur);
        if (e != NULL) {
            entry_pos(e, key && cur == full, line, col);
            return (long)cur;
        }
        if (cur == 0) {
            return -1;
        }
        /* step back to the end of the previous component */
        size_t i = 0, prev = 0;
        while (i < cur) {
            size_t end = component_end(path, i, full);
            if (end >= cur) {
                break;
            }
            prev = end;
            i = end;
        }
        cur = prev;
    }
}

static int cmp_entry(const void *a, const void *b)
{
    const struct jentry *x = *(const struct jentry *const *)a;
    const struct jentry *y = *(const struct jentry *const *)b;
    int c = strcmp(x->path, y->path);

    if (c != 0) {
        return c;
    }
    return x < y ? -1 : x > y;
}

int tg_jpos_first_dup(const struct tg_jpos *pos, const char **path, int *line, int *col)
{
    const struct jentry **v = malloc((pos->n ? pos->n : 1) * sizeof(const struct jentry *));
    const struct jentry *dup = NULL;
    size_t n = 0;

    if (v == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < pos->n; i++) {
        if (pos->v[i].kline > 0) {
            v[n++] = &pos->v[i];
        }
    }
    /* same path = same key of the same object; sorting puts repeats next to each other, in
     * text order, so the later one of each run is a duplicate */
    qsort(v, n, sizeof(const struct jentry *), cmp_entry);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i]->path, v[i - 1]->path) == 0 && (dup == NULL || v[i] < dup)) {
            dup = v[i];
        }
    }
    free(v);
    if (dup == NULL) {
        return TG_EINVAL;
    }
    *path = dup->path;
    entry_pos(dup, 1, line, col);
    return TG_OK;
}

const char *tg_jpos_path_key(char *out, size_t cap, const char *parent, const char *key)
{
    struct sink s = {.buf = out, .cap = cap};

    if (cap > 0) {
        out[0] = '\0';
    }
    sink_puts(&s, parent);
    put_key(&s, key, strlen(key));
    return out;
}

const char *tg_jpos_path_index(char *out, size_t cap, const char *parent, size_t i)
{
    struct sink s = {.buf = out, .cap = cap};

    if (cap > 0) {
        out[0] = '\0';
    }
    sink_puts(&s, parent);
    put_index(&s, i);
    return out;
}

const char *tg_jpos_quote(char *out, size_t cap, const char *str)
{
    struct sink s = {.buf = out, .cap = cap};
    size_t n = strlen(str), cut = n > QUOTE_MAX ? QUOTE_MAX : n;

    if (cap > 0) {
        out[0] = '\0';
    }
    while (cut > 0 && cut < n && ((unsigned char)str[cut] & 0xC0) == 0x80) {
        cut--; /* do not split a UTF-8 sequence */
    }
    put_json_string(&s, str, cut);
    if (cut < n) {
        sink_puts(&s, "...");
    }
    return out;
}
