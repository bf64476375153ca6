#include "routes/table.h"

/* Route matching: which route of a loaded table serves a request path, which methods a path
 * allows, and upstream path templates filled from a match. The table is built by table.c. */

#include <stdio.h>
#include <string.h>

#include "gateway/err.h"
#include "gateway/uri.h"
#include "routes/table_internal.h"

/* Most specific route wins. Two routes that both match a path are compared segment by segment
 * from the left, each position ranked: a literal segment (RANK_LITERAL) beats a {param}
 * (RANK_PARAM), which beats the star tail of a prefix pattern (RANK_TAIL). Where an exact pattern
 * ends (RANK_END), a prefix pattern matching the same path can only be at its tail, so exact beats
 * prefix, and among prefix routes the longer prefix wins. At equal patterns the method decides: the
 * request's own method beats GET serving a HEAD, which beats "*". The loader rejects two routes
 * with the same method and pattern, so the order is total and declaration order never matters. */
enum rank {
    RANK_TAIL = 1,
    RANK_PARAM = 2,
    RANK_LITERAL = 3,
    RANK_END = 4,
};

/* The path being matched, cut at '/': where its first segments are, and how many there are. */
struct split {
    size_t n;
    size_t off[TG_ROUTE_SEGS_MAX];
    size_t len[TG_ROUTE_SEGS_MAX];
};

static int split_path(const char *path, size_t len, struct split *sp)
{
    size_t i = 1;

    if (len == 0 || path[0] != '/') {
        return TG_ENOROUTE;
    }
    if (tg_path_has_dot_segment(path, len)) {
        return TG_EINVAL;
    }
    sp->n = 0;
    for (;;) {
        const char *slash = memchr(path + i, '/', len - i);
        size_t end = slash != NULL ? (size_t)(slash - path) : len;
        if (sp->n < TG_ROUTE_SEGS_MAX) {
            sp->off[sp->n] = i;
            sp->len[sp->n] = end - i;
        }
        sp->n++;
        if (slash == NULL) {
            return TG_OK;
        }
        i = end + 1;
    }
}

static bool pattern_matches(const struct tg_route *r, const char *path, const struct split *sp)
{
    if (r->prefix ? sp->n < r->n_segs : sp->n != r->n_segs) {
        return false;
    }
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct tg_seg *g = &r->segs[i];
        size_t n = sp->len[i];
        if (g->kind == TG_SEG_PARAM ? n == 0
                                    : n != g->len || memcmp(g->text, path + sp->off[i], n) != 0) {
            return false;
        }
    }
    return true;
}

/* 2: the route names the method; 1: a GET route serving HEAD; 0: "*"; -1: not allowed. */
static int method_score(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0) {
        return 2;
    }
    if (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0) {
        return 1;
    }
    return strcmp(route_method, "*") == 0 ? 0 : -1;
}

static enum rank rank_at(const struct tg_route *r, size_t i)
{
    if (i < r->n_segs) {
        return r->segs[i].kind == TG_SEG_LITERAL ? RANK_LITERAL : RANK_PARAM;
    }
    return r->prefix ? RANK_TAIL : RANK_END;
}

/* True when a (method score ma) is more specific than b; both match the same path. */
static bool beats(const struct tg_route *a, int ma, const struct tg_route *b, int mb)
{
    size_t n = (a->n_segs > b->n_segs ? a->n_segs : b->n_segs) + 1;

    for (size_t i = 0; i < n; i++) {
        enum rank ra = rank_at(a, i), rb = rank_at(b, i);
        if (ra != rb) {
            return ra > rb;
        }
    }
    return ma > mb;
}

int tg_route_table_match(const struct tg_route_table *t, const char *method, const char *path,
                         size_t path_len, struct tg_route_match *m)
{
    const struct tg_route *best = NULL;
    struct split sp;
    bool known = false;
    int best_ms = -1, rc = split_path(path, path_len, &sp);

    m->route = NULL;
    m->n_params = 0;
    m->rest = path + path_len;
    m->rest_len = 0;
    if (rc != TG_OK) {
        return rc;
    }
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        const struct tg_route *r = &t->routes[i];
        int ms;
        if (!pattern_matches(r, path, &sp)) {
            continue;
        }
        known = true;
        ms = method_score(r->method, method);
        if (ms >= 0 && (best == NULL || beats(r, ms, best, best_ms))) {
            best = r;
            best_ms = ms;
        }
    }
    if (best == NULL) {
        return known ? TG_EMETHOD : TG_ENOROUTE;
    }
    m->route = best;
    for (size_t i = 0; i < best->n_segs; i++) {
        if (best->segs[i].kind == TG_SEG_PARAM) {
            struct tg_route_param *p = &m->params[m->n_params++];
            p->name = best->segs[i].text;
            p->value = path + sp.off[i];
            p->len = sp.len[i];
        }
    }
    if (best->prefix) {
        size_t k = best->n_segs, end = k > 0 ? sp.off[k - 1] + sp.len[k - 1] : 0;
        m->rest = path + end;
        m->rest_len = path_len - end;
    }
    return TG_OK;
}

/* The smallest of next and cand that sorts after last ("*" is not a method to list). */
static const char *pick(const char *next, const char *last, const char *cand)
{
    if (strcmp(cand, "*") == 0 || (last != NULL && strcmp(cand, last) <= 0)) {
        return next;
    }
    return next == NULL || strcmp(cand, next) < 0 ? cand : next;
}

size_t tg_route_table_allow(const struct tg_route_table *t, const char *path, size_t path_len,
                            char *buf, size_t cap)
{
    const char *last = NULL;
    struct split sp;
    size_t len = 0;

    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    if (t == NULL || split_path(path, path_len, &sp) != TG_OK) {
        return 0;
    }
    /* sorted and without repeats, without allocating: emit the next larger method each pass */
    for (;;) {
        const char *next = NULL;
        for (size_t i = 0; i < t->n; i++) {
            const struct tg_route *r = &t->routes[i];
            if (pattern_matches(r, path, &sp)) {
                next = pick(next, last, r->method);
                next = strcmp(r->method, "GET") == 0 ? pick(next, last, "HEAD") : next;
            }
        }
        size_t need = next != NULL ? strlen(next) + (len > 0 ? 2 : 0) : 0;
        if (next == NULL || len + need + 1 > cap) {
            return len; /* whole names only */
        }
        snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", next);
        len += need;
        last = next;
    }
}

long tg_route_expand(const char *pattern, const struct tg_route_match *m, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = pattern; *p != '\0';) {
        const char *piece = p, *close;
        size_t plen = strcspn(p, "{");
        if (plen == 0) {
            const struct tg_route_param *hit = NULL;
            close = strchr(p, '}');
            for (size_t i = 0; close != NULL && i < m->n_params && hit == NULL; i++) {
                const struct tg_route_param *q = &m->params[i];
                size_t nlen = (size_t)(close - p - 1);
                hit = strlen(q->name) == nlen && memcmp(q->name, p + 1, nlen) == 0 ? q : NULL;
            }
            if (hit == NULL) {
                return -1;
            }
            piece = hit->value;
            plen = hit->len;
            p = close + 1;
        } else {
            p += plen;
        }
        if (n + plen >= cap) {
            return -1;
        }
        memcpy(out + n, piece, plen);
        n += plen;
    }
    if (n >= cap) {
        return -1;
    }
    out[n] = '\0';
    return (long)n;
}
