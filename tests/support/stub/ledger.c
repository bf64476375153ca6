#include "tests/support/stub/stub.h"

/* tg-stub: the questionnaire service's ledger, a backend of record for durable submissions. A
 * submission with an Idempotency-Key is stored once per key (the UNIQUE constraint a real backend
 * keeps), and a repeat gets the first answer again; every arrival is counted, so tests see resends
 * (arrivals > stored) and duplicates (stored > 1 for a key). Behaviours for tests, set with
 * POST /_stub/ledger/config?NAME=VALUE&...:
 *   dedup=0|1            0: every arrival is stored (a backend that cannot deduplicate)
 *   commit_then_reset=P  P% of stores (0..100) reset the connection instead of answering
 *   down=0|1             1: answer 503 and store nothing
 *   hang_ms=N            store, then wait N ms before answering
 *   refuse=S             store nothing and answer S (a refusal: 400, 422...); 0 turns it off
 * GET /_stub/ledger reads it back: totals, per key (stored, arrivals, group), and per group (the
 * X-Patient-Id header, or the body's "patient_id") the keys in the order they were stored.
 * POST /_stub/ledger/reset empties it. One lock guards it all. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX   256
#define GROUP_MAX 128
#define INDEX_MIN 1024

struct entry {
    char key[KEY_MAX];
    char group[GROUP_MAX];
    unsigned stored, arrivals;
    uint64_t seq; /* the first store's: the answer a repeat gets */
    uint32_t tag;
};

static struct {
    pthread_mutex_t lock;
    struct entry *e;
    size_t n, cap;
    size_t *index; /* open addressing: entry + 1, 0 = free */
    size_t index_cap;
    size_t *order; /* entry of each store, in store order */
    size_t n_order, cap_order;
    uint64_t arrivals, stored;
    bool no_dedup, down;
    long reset_pct, hang_ms, status;
    uint64_t rnd;
} ledger = {.lock = PTHREAD_MUTEX_INITIALIZER, .rnd = 0x9E3779B97F4A7C15u};

static size_t hash_of(const char *k)
{
    return (size_t)fnv1a(k, strlen(k));
}

static bool grow_index(void)
{
    size_t cap = ledger.index_cap == 0 ? INDEX_MIN : ledger.index_cap * 2;
    size_t *idx = calloc(cap, sizeof(*idx));

    if (idx == NULL) {
        return false;
    }
    for (size_t i = 0; i < ledger.n; i++) {
        size_t h = hash_of(ledger.e[i].key) & (cap - 1);
        while (idx[h] != 0) {
            h = (h + 1) & (cap - 1);
        }
        idx[h] = i + 1;
    }
    free(ledger.index);
    ledger.index = idx;
    ledger.index_cap = cap;
    return true;
}

/* The entry of key, made when missing; NULL when out of memory. */
static struct entry *entry_of(const char *key, const char *group)
{
    size_t h;

    if ((ledger.n + 1) * 2 > ledger.index_cap && !grow_index()) {
        return NULL;
    }
    h = hash_of(key) & (ledger.index_cap - 1);
    while (ledger.index[h] != 0) {
        struct entry *e = &ledger.e[ledger.index[h] - 1];
        if (strcmp(e->key, key) == 0) {
            return e;
        }
        h = (h + 1) & (ledger.index_cap - 1);
    }
    if (ledger.n == ledger.cap) {
        size_t cap = ledger.cap == 0 ? 256 : ledger.cap * 2;
        struct entry *p = realloc(ledger.e, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        ledger.e = p;
        ledger.cap = cap;
    }
    struct entry *e = &ledger.e[ledger.n];
    memset(e, 0, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    snprintf(e->group, sizeof(e->group), "%s", group);
    ledger.index[h] = ++ledger.n;
    return e;
}

static bool note_store(size_t entry)
{
    if (ledger.n_order == ledger.cap_order) {
        size_t cap = ledger.cap_order == 0 ? 1024 : ledger.cap_order * 2;
        size_t *p = realloc(ledger.order, cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        ledger.order = p;
        ledger.cap_order = cap;
    }
    ledger.order[ledger.n_order++] = entry;
    return true;
}

/* xorshift64: the stub's own coin for commit_then_reset (not security). */
static long coin(void)
{
    ledger.rnd ^= ledger.rnd << 13;
    ledger.rnd ^= ledger.rnd >> 7;
    ledger.rnd ^= ledger.rnd << 17;
    return (long)(ledger.rnd % 100);
}

/* The key without the sf-string quotes. */
static void key_of(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);

    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)n, v);
}

/* The patient: X-Patient-Id, else the body's "patient_id":"..." (a plain scan, no JSON parser
 * in the stub). */
static void group_of(const struct request *r, char *out, size_t cap)
{
    const char *h = header_get(r, "X-Patient-Id");
    const char *p = r->body != NULL ? memmem(r->body, r->body_len, "\"patient_id\":\"", 14) : NULL;

    out[0] = '\0';
    if (h != NULL) {
        snprintf(out, cap, "%s", h);
    } else if (p != NULL) {
        const char *v = p + 14;
        const char *end = memchr(v, '"', r->body_len - (size_t)(v - r->body));
        if (end != NULL) {
            snprintf(out, cap, "%.*s", (int)(end - v), v);
        }
    }
}

bool ledger_submit(const struct request *r, struct reply *rep)
{
    const char *kv = header_get(r, "Idempotency-Key");
    char key[KEY_MAX], group[GROUP_MAX];
    struct entry *e;
    bool fresh;

    if (kv == NULL) {
        return false; /* no key: the plain demo answer */
    }
    key_of(kv, key, sizeof(key));
    group_of(r, group, sizeof(group));
    pthread_mutex_lock(&ledger.lock);
    ledger.arrivals++;
    e = entry_of(key, group);
    if (e == NULL) {
        pthread_mutex_unlock(&ledger.lock);
        rep->own.oom = true;
        return true;
    }
    e->arrivals++;
    if (ledger.down || ledger.status > 0) {
        rep->status = ledger.down ? 503 : (int)ledger.status;
        pthread_mutex_unlock(&ledger.lock);
        sbuf_str(&rep->own,
                 rep->status == 503 ? "{\"error\":\"down\"}" : "{\"error\":\"refused\"}");
        rep->ctype = "application/json";
        rep->body = rep->own.p;
        rep->len = rep->own.len;
        return true;
    }
    fresh = e->stored == 0 || ledger.no_dedup;
    if (fresh) {
        e->stored++;
        ledger.stored++;
        note_store((size_t)(e - ledger.e));
        if (e->seq == 0) {
            e->seq = atomic_fetch_add(&stub.next_submission, 1) + 1;
            e->tag = (uint32_t)(fnv1a(r->body, r->body_len) ^ (e->seq * 0x9E3779B97F4A7C15u));
        }
        rep->reset_after = ledger.reset_pct > 0 && coin() < ledger.reset_pct;
        rep->hang_ms = ledger.hang_ms;
    }
    uint64_t seq = e->seq;
    uint32_t tag = e->tag;
    pthread_mutex_unlock(&ledger.lock);
    /* A repeat gets the first answer: the same status and body (FHIR reliable messaging). */
    sbuf_addf(&rep->own, "{\"message\":\"success\",\"submission_id\":\"sub-%" PRIu64 "-%08x\"}",
              seq, (unsigned)tag);
    rep->status = 201;
    rep->ctype = "application/json";
    rep->body = rep->own.p;
    rep->len = rep->own.len;
    return true;
}

static bool set_param(const char *k, const char *v)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);

    if (end == v || *end != '\0' || n < 0) {
        return false;
    }
    if (strcmp(k, "dedup") == 0 && n <= 1) {
        ledger.no_dedup = n == 0;
    } else if (strcmp(k, "down") == 0 && n <= 1) {
        ledger.down = n == 1;
    } else if (strcmp(k, "commit_then_reset") == 0 && n <= 100) {
        ledger.reset_pct = n;
    } else if (strcmp(k, "hang_ms") == 0 && n <= 600000) {
        ledger.hang_ms = n;
    } else if (strcmp(k, "refuse") == 0 && (n == 0 || (n >= 400 && n <= 599))) {
        ledger.status = n;
    } else {
        return false;
    }
    return true;
}

static bool configure(const char *query)
{
    char buf[512];
    bool ok = true;

    snprintf(buf, sizeof(buf), "%s", query);
    for (char *k = buf, *amp; ok && k != NULL && *k != '\0'; k = amp) {
        amp = strchr(k, '&');
        if (amp != NULL) {
            *amp++ = '\0';
        }
        char *v = strchr(k, '=');
        ok = v != NULL;
        if (ok) {
            *v++ = '\0';
            ok = set_param(k, v);
        }
    }
    return ok;
}

static void reset(void)
{
    free(ledger.e);
    free(ledger.index);
    free(ledger.order);
    ledger.e = NULL;
    ledger.index = NULL;
    ledger.order = NULL;
    ledger.n = ledger.cap = ledger.index_cap = ledger.n_order = ledger.cap_order = 0;
    ledger.arrivals = ledger.stored = 0;
    ledger.no_dedup = ledger.down = false;
    ledger.reset_pct = ledger.hang_ms = ledger.status = 0;
}

/* The per-group orders: for each group seen, its keys in store order. */
static void dump_orders(struct sbuf *s)
{
    bool *done = calloc(ledger.n + 1, sizeof(*done));
    bool first_group = true;

    sbuf_str(s, ",\"order\":{");
    for (size_t i = 0; done != NULL && i < ledger.n_order; i++) {
        const struct entry *g = &ledger.e[ledger.order[i]];
        if (done[ledger.order[i]] || g->group[0] == '\0') {
            continue;
        }
        sbuf_str(s, first_group ? "" : ",");
        first_group = false;
        sbuf_json(s, g->group, strlen(g->group));
        sbuf_str(s, ":[");
        bool first = true;
        for (size_t j = i; j < ledger.n_order; j++) {
            const struct entry *e = &ledger.e[ledger.order[j]];
            if (strcmp(e->group, g->group) != 0) {
                continue;
            }
            done[ledger.order[j]] = true;
            sbuf_str(s, first ? "" : ",");
            first = false;
            sbuf_json(s, e->key, strlen(e->key));
        }
        sbuf_str(s, "]");
    }
    sbuf_str(s, "}");
    s->oom |= done == NULL;
    free(done);
}

static void dump(struct sbuf *s)
{
    sbuf_addf(s, "{\"arrivals\":%" PRIu64 ",\"stored\":%" PRIu64 ",\"keys\":{", ledger.arrivals,
              ledger.stored);
    for (size_t i = 0; i < ledger.n; i++) {
        const struct entry *e = &ledger.e[i];
        sbuf_str(s, i > 0 ? "," : "");
        sbuf_json(s, e->key, strlen(e->key));
        sbuf_addf(s, ":{\"stored\":%u,\"arrivals\":%u,\"group\":", e->stored, e->arrivals);
        sbuf_json(s, e->group, strlen(e->group));
        sbuf_str(s, "}");
    }
    sbuf_str(s, "}");
    dump_orders(s);
    sbuf_str(s, "}");
}

bool ledger_control(const struct request *r, const char *path, size_t plen, struct reply *rep)
{
    const char *q = strchr(r->target, '?');
    bool ok = true;

    if (plen == 13 && strncmp(path, "/_stub/ledger", plen) == 0 && strcmp(r->method, "GET") == 0) {
        pthread_mutex_lock(&ledger.lock);
        dump(&rep->own);
        pthread_mutex_unlock(&ledger.lock);
    } else if (plen == 20 && strncmp(path, "/_stub/ledger/config", plen) == 0) {
        pthread_mutex_lock(&ledger.lock);
        ok = configure(q != NULL ? q + 1 : "");
        pthread_mutex_unlock(&ledger.lock);
        sbuf_str(&rep->own, ok ? "{\"ok\":true}" : "{\"error\":\"bad ledger parameter\"}");
    } else if (plen == 19 && strncmp(path, "/_stub/ledger/reset", plen) == 0) {
        pthread_mutex_lock(&ledger.lock);
        reset();
        pthread_mutex_unlock(&ledger.lock);
        sbuf_str(&rep->own, "{\"ok\":true}");
    } else {
        return false;
    }
    rep->status = ok ? 200 : 400;
    rep->ctype = "application/json";
    rep->body = rep->own.p;
    rep->len = rep->own.len;
    return true;
}

void ledger_free(void)
{
    pthread_mutex_lock(&ledger.lock);
    reset();
    pthread_mutex_unlock(&ledger.lock);
}
