/* The SQLite store's operations (spool/store.h) and the SQL they run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "spool/sqlite.h"

/* The metadata columns, in the order read_meta reads them. */
#define META                                                                            \
    "seq, id, route, idem_key, trace_id, reason, state, attempts, created_ms, age_ms, " \
    "updated_ms, next_ms, delivered_ms, upstream_status, answer_status, in_progress"
#define META_COLS 16
/* A record that blocks later ones of its order key: open (0, 1), or with hold also dead or
 * unknown (the two parameters are 4 and 5 then, else 0 and 1 again). A plain IN list, so that
 * the (order_key, state, seq) index answers it with a probe per state. */
#define BLOCKS(p, h4, h5) p "state IN (0, 1, " h4 ", " h5 ")"

const char *const tg_sql_text[TG_SQL_COUNT] = {
    [TG_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [TG_SQL_COMMIT] = "COMMIT",
    [TG_SQL_FIND_KEY] = "SELECT " META ", fingerprint, answer FROM records"
                        " WHERE route=?1 AND scope=?2 AND idem_key=?3",
    [TG_SQL_ORDER_OPEN] =
        "SELECT 1 FROM records WHERE order_key=?1 AND " BLOCKS("", "?2", "?3") " LIMIT 1",
    [TG_SQL_ORDER_OF] = "SELECT order_key FROM records WHERE id=?1",
    /* The first waiting record of an order key goes when nothing before it blocks any more. */
    [TG_SQL_UNBLOCK] = "UPDATE records SET next_ms=?2 WHERE seq=(SELECT n.seq FROM records AS n"
                       " WHERE n.order_key=?1 AND n.state=0 AND n.next_ms=?3 ORDER BY n.seq"
                       " LIMIT 1) AND NOT EXISTS (SELECT 1 FROM records AS p WHERE"
                       " p.order_key=?1 AND " BLOCKS("p.", "?4", "?5") " AND p.seq<records.seq)",
    [TG_SQL_INSERT] = "INSERT INTO records (id, route, scope, idem_key, fingerprint, order_key,"
                      " state, attempts, created_ms, age_ms, updated_ms, next_ms, trace_id,"
                      " in_progress, answer_status, answer_ms, answer, request)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9, ?16, ?10, ?11, ?12,"
                      " ?13, ?14, ?15)",
    [TG_SQL_GET] = "SELECT " META ", answer FROM records WHERE id=?1",
    [TG_SQL_ANSWER_SET] = "UPDATE records SET answer_status=?2, answer=?3, answer_ms=?4,"
                          " in_progress=0 WHERE id=?1 AND answer_status=0",
    [TG_SQL_ANSWER_GET] = "SELECT answer_status, answer FROM records WHERE id=?1",
    [TG_SQL_DEAD] = "UPDATE records SET state=4, reason='max age reached', updated_ms=?3"
                    " WHERE route=?1 AND state=0 AND age_ms<=?2 RETURNING " META ", order_key",
    [TG_SQL_DUE] = "SELECT " META ", request FROM records AS r WHERE r.route=?1 AND r.state=0"
                   " AND r.next_ms<=?2 AND (r.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM"
                   " records AS p WHERE p.order_key=r.order_key AND " BLOCKS(
                       "p.", "?3", "?5") " AND p.seq<r.seq)) ORDER BY r.next_ms, r.seq LIMIT ?4",
    [TG_SQL_TAKE] = "UPDATE records SET state=1, attempts=attempts+1, updated_ms=?2 WHERE seq=?1",
    [TG_SQL_MARK] = "UPDATE records SET state=?2, upstream_status=?3, reason=?4, next_ms=?5,"
                    " updated_ms=?6, delivered_ms=CASE WHEN ?2=2 THEN ?6 ELSE delivered_ms END,"
                    " request=CASE WHEN ?2 IN (2,3) THEN NULL ELSE request END WHERE id=?1",
    [TG_SQL_EXPIRE_ANSWERS] = "UPDATE records SET answer=NULL WHERE answer IS NOT NULL"
                              " AND answer_ms<?1 AND in_progress=0",
    [TG_SQL_EXPIRE_DONE] = "DELETE FROM records WHERE state IN (2,3) AND updated_ms<?1",
    [TG_SQL_RECOVER_PROGRESS] = "UPDATE records SET in_progress=0 WHERE in_progress=1",
    [TG_SQL_RECOVER_LIST] = "SELECT id, route FROM records WHERE state=1",
    [TG_SQL_RECOVER_SET] = "UPDATE records SET state=?2, reason=?3, updated_ms=?4, next_ms=?4"
                           " WHERE id=?1",
    [TG_SQL_COUNTS] = "SELECT state, count(*) FROM records GROUP BY state",
    [TG_SQL_COUNTS_OPEN] = "SELECT state, count(*) FROM records WHERE state IN (0,1,4,5)"
                           " GROUP BY state",
    [TG_SQL_OLDEST] = "SELECT min(created_ms) FROM records WHERE state IN (0,1)",
    [TG_SQL_LIST] = "SELECT " META " FROM records WHERE (?1<0 OR state=?1)"
                    " AND (?2 IS NULL OR route=?2) ORDER BY seq LIMIT ?3",
    [TG_SQL_REPLAY] = "UPDATE records SET state=0, next_ms=?2, age_ms=?2, updated_ms=?2,"
                      " reason='replayed by an operator'"
                      " WHERE id=?1 AND state IN (4,5) AND request IS NOT NULL",
    [TG_SQL_REMOVE] = "DELETE FROM records WHERE id=?1",
    [TG_SQL_AUDIT] = "INSERT INTO audit (at_ms, action, id, detail, uid)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
    [TG_SQL_META_GET] = "SELECT value FROM meta WHERE name=?1",
    [TG_SQL_META_PUT] = "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
};

void tg_spool_blob_cleanup(struct tg_spool_blob *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

const char *tg_spool_state_name(int state)
{
    static const char *const names[TG_SPOOL_STATES] = {
        "queued", "delivering", "delivered", "rejected", "dead", "unknown",
    };

    return state >= 0 && state < TG_SPOOL_STATES ? names[state] : NULL;
}

int tg_spool_state_of(const char *name)
{
    for (int i = 0; i < TG_SPOOL_STATES; i++) {
        if (strcmp(tg_spool_state_name(i), name) == 0) {
            return i;
        }
    }
    return -1;
}

static void copy_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;

    if (n >= cap) {
        n = cap - 1;
    }
    if (n > 0) {
        memcpy(out, t, n);
    }
    out[n] = '\0';
}

static void read_meta(sqlite3_stmt *st, struct tg_spool_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->seq = sqlite3_column_int64(st, 0);
    copy_text(st, 1, m->id, sizeof(m->id));
    copy_text(st, 2, m->route, sizeof(m->route));
    copy_text(st, 3, m->key, sizeof(m->key));
    copy_text(st, 4, m->trace_id, sizeof(m->trace_id));
    copy_text(st, 5, m->reason, sizeof(m->reason));
    m->state = sqlite3_column_int(st, 6);
    m->attempts = (unsigned)sqlite3_column_int(st, 7);
    m->created_ms = sqlite3_column_int64(st, 8);
    m->age_ms = sqlite3_column_int64(st, 9);
    m->updated_ms = sqlite3_column_int64(st, 10);
    m->next_ms = sqlite3_column_int64(st, 11);
    m->delivered_ms = sqlite3_column_int64(st, 12);
    m->upstream_status = sqlite3_column_int(st, 13);
    m->answer_status = sqlite3_column_int(st, 14);
    m->in_progress = sqlite3_column_int(st, 15) != 0;
}

/* A malloc'd copy of a BLOB column (empty for NULL). TG_OK or TG_ENOMEM. */
static int copy_blob(sqlite3_stmt *st, int col, struct tg_spool_blob *out)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = p != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;

    out->p = NULL;
    out->len = 0;
    if (n == 0) {
        return TG_OK;
    }
    out->p = malloc(n);
    if (out->p == NULL) {
        return TG_ENOMEM;
    }
    memcpy(out->p, p, n);
    out->len = n;
    return TG_OK;
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return p == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps st once: TG_OK with *row set (a row or done), or the mapped error. */
static int step(struct tg_store *s, sqlite3_stmt *st, bool *row, const char *what)
{
    int rc = sqlite3_step(st);

    *row = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? TG_OK : tg_sqlite_rc(s, rc, what);
}

/* Runs a statement to its end (no rows wanted). */
static int run(struct tg_store *s, sqlite3_stmt *st, const char *what)
{
    bool row = true;
    int rc = TG_OK;

    while (rc == TG_OK && row) {
        rc = step(s, st, &row, what);
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- put ------------------------------------------------------------------------------------ */

/* The record (route, scope, key) names, if any: *found, and out filled as put reports it. */
static int find_key(struct tg_store *s, const struct tg_spool_put *p, bool *found,
                    struct tg_spool_put_result *out)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_FIND_KEY);
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, p->route);
    bind_blob(st, 2, p->scope, TG_SPOOL_MAC_LEN);
    bind_text(st, 3, p->key);
    rc = step(s, st, found, "find key");
    if (rc == TG_OK && *found) {
        const void *fp = sqlite3_column_blob(st, META_COLS);
        read_meta(st, &out->meta);
        out->same = fp != NULL && sqlite3_column_bytes(st, META_COLS) == TG_SPOOL_MAC_LEN &&
                    memcmp(fp, p->fingerprint, TG_SPOOL_MAC_LEN) == 0;
        rc = copy_blob(st, META_COLS + 1, &out->answer);
    }
    sqlite3_reset(st);
    return rc;
}

/* Whether an earlier record of order_key still blocks a new one. */
static int order_open(struct tg_store *s, const uint8_t *order_key, bool hold, bool *open)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_ORDER_OPEN);
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_blob(st, 1, order_key, TG_SPOOL_MAC_LEN);
    sqlite3_bind_int(st, 2, hold ? TG_SPOOL_DEAD : TG_SPOOL_QUEUED);
    sqlite3_bind_int(st, 3, hold ? TG_SPOOL_UNKNOWN : TG_SPOOL_DELIVERING);
    rc = step(s, st, open, "order");
    sqlite3_reset(st);
    return rc;
}

/* Lets the first waiting record of order_key (MAC_LEN bytes) go if nothing before it blocks. */
static int unblock(struct tg_store *s, const void *order_key, int64_t now_ms, bool hold)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_UNBLOCK);

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_blob(st, 1, order_key, TG_SPOOL_MAC_LEN);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, TG_SPOOL_BLOCKED_MS);
    sqlite3_bind_int(st, 4, hold ? TG_SPOOL_DEAD : TG_SPOOL_QUEUED);
    sqlite3_bind_int(st, 5, hold ? TG_SPOOL_UNKNOWN : TG_SPOOL_DELIVERING);
    return run(s, st, "unblock");
}

/* The order key of record id into key (MAC_LEN bytes); *has false when it has none. */
static int order_of(struct tg_store *s, const char *id, uint8_t *key, bool *has)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_ORDER_OF);
    bool row = false;
    int rc;

    *has = false;
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, id);
    rc = step(s, st, &row, "order");
    if (rc == TG_OK && row && sqlite3_column_bytes(st, 0) == TG_SPOOL_MAC_LEN) {
        memcpy(key, sqlite3_column_blob(st, 0), TG_SPOOL_MAC_LEN);
        *has = true;
    }
    sqlite3_reset(st);
    return rc;
}

static int insert(struct tg_store *s, const struct tg_spool_put *p, bool attempt, bool blocked)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_INSERT);

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, p->id);
    bind_text(st, 2, p->route);
    bind_blob(st, 3, p->scope, TG_SPOOL_MAC_LEN);
    bind_text(st, 4, p->key);
    bind_blob(st, 5, p->fingerprint, TG_SPOOL_MAC_LEN);
    bind_blob(st, 6, p->order_key, TG_SPOOL_MAC_LEN);
    sqlite3_bind_int(st, 7, attempt ? TG_SPOOL_DELIVERING : TG_SPOOL_QUEUED);
    sqlite3_bind_int(st, 8, attempt ? 1 : 0);
    sqlite3_bind_int64(st, 9, p->now_ms);
    bind_text(st, 10, p->trace_id);
    sqlite3_bind_int(st, 11, attempt ? 1 : 0);
    sqlite3_bind_int(st, 12, attempt ? 0 : 202);
    sqlite3_bind_int64(st, 13, attempt ? 0 : p->now_ms);
    bind_blob(st, 14, attempt ? NULL : p->accepted, p->accepted_len);
    bind_blob(st, 15, p->request, p->request_len);
    sqlite3_bind_int64(st, 16, blocked ? TG_SPOOL_BLOCKED_MS : p->now_ms);
    return run(s, st, "insert");
}

/* The metadata of the record put just made. */
static void new_meta(struct tg_store *s, const struct tg_spool_put *p, bool attempt, bool blocked,
                     struct tg_spool_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->seq = sqlite3_last_insert_rowid(s->db);
    snprintf(m->id, sizeof(m->id), "%s", p->id);
    snprintf(m->route, sizeof(m->route), "%s", p->route);
    snprintf(m->key, sizeof(m->key), "%s", p->key);
    snprintf(m->trace_id, sizeof(m->trace_id), "%s", p->trace_id);
    m->state = attempt ? TG_SPOOL_DELIVERING : TG_SPOOL_QUEUED;
    m->attempts = attempt ? 1 : 0;
    m->created_ms = m->age_ms = m->updated_ms = p->now_ms;
    m->next_ms = blocked ? TG_SPOOL_BLOCKED_MS : p->now_ms;
    m->answer_status = attempt ? 0 : 202;
    m->in_progress = attempt;
}

int tg_sqlite_put(struct tg_store *s, const struct tg_spool_put *p, struct tg_spool_put_result *out)
{
    bool found = false;
    bool blocked = false;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = find_key(s, p, &found, out);
    if (rc != TG_OK || found) {
        return rc;
    }
    if (p->order_key != NULL) {
        rc = order_open(s, p->order_key, p->hold, &blocked);
        if (rc != TG_OK) {
            return rc;
        }
    }
    out->created = true;
    out->attempt = p->attempt && !blocked;
    out->same = true;
    rc = insert(s, p, out->attempt, blocked);
    if (rc == TG_OK) {
        new_meta(s, p, out->attempt, blocked, &out->meta);
    }
    return rc;
}

/* ---- get, answer ------------------------------------------------------------------------------
 */

int tg_sqlite_get(struct tg_store *s, const char *id, struct tg_spool_meta *out,
                  struct tg_spool_blob *answer)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_GET);
    bool row = false;
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, id);
    rc = step(s, st, &row, "get");
    if (rc == TG_OK && !row) {
        rc = TG_ENOTFOUND;
    }
    if (rc == TG_OK) {
        read_meta(st, out);
        rc = answer != NULL ? copy_blob(st, META_COLS, answer) : TG_OK;
    }
    sqlite3_reset(st);
    return rc;
}

int tg_sqlite_answer(struct tg_store *s, const char *id, int status, const uint8_t *blob,
                     size_t len, int64_t now_ms, int *kept_status, struct tg_spool_blob *kept)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_ANSWER_SET);
    bool row = false;
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, status);
    bind_blob(st, 3, blob, len);
    sqlite3_bind_int64(st, 4, now_ms);
    rc = run(s, st, "answer");
    if (rc != TG_OK) {
        return rc;
    }
    /* Read back what stands: this answer, or the one fixed before it. */
    st = tg_sqlite_stmt(s, TG_SQL_ANSWER_GET);
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, id);
    rc = step(s, st, &row, "answer");
    if (rc == TG_OK && !row) {
        rc = TG_ENOTFOUND;
    }
    if (rc == TG_OK) {
        *kept_status = sqlite3_column_int(st, 0);
        rc = kept != NULL ? copy_blob(st, 1, kept) : TG_OK;
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- claim, mark ------------------------------------------------------------------------------
 */

/* Records past max_age die; with "skip" the next one of each one's order key may go. */
static int sweep_dead(struct tg_store *s, const struct tg_spool_claim *c)
{
    sqlite3_stmt *st = c->sweep ? tg_sqlite_stmt(s, TG_SQL_DEAD) : NULL;
    uint8_t(*keys)[TG_SPOOL_MAC_LEN] = NULL;
    size_t n = 0, cap = 0;
    bool row = true;
    int rc = TG_OK;

    if (st == NULL) {
        return c->sweep ? TG_EINTERNAL : TG_OK;
    }
    bind_text(st, 1, c->route);
    sqlite3_bind_int64(st, 2, c->dead_before_ms);
    sqlite3_bind_int64(st, 3, c->now_ms);
    while (rc == TG_OK) {
        struct tg_spool_meta m;
        struct tg_spool_blob none = {0};
        rc = step(s, st, &row, "dead");
        if (rc != TG_OK || !row) {
            break;
        }
        read_meta(st, &m);
        if (c->dead_fn != NULL) {
            c->dead_fn(c->arg, &m, &none);
        }
        if (!c->hold && sqlite3_column_bytes(st, META_COLS) == TG_SPOOL_MAC_LEN) {
            if (n == cap) {
                void *p = realloc(keys, (cap = cap * 2 + 16) * sizeof(*keys));
                if (p == NULL) {
                    rc = TG_ENOMEM;
                    break;
                }
                keys = p;
            }
            memcpy(keys[n++], sqlite3_column_blob(st, META_COLS), TG_SPOOL_MAC_LEN);
        }
    }
    sqlite3_reset(st);
    /* After the update, not during it: one statement at a time on the table. */
    for (size_t i = 0; rc == TG_OK && i < n; i++) {
        rc = unblock(s, keys[i], c->now_ms, c->hold);
    }
    free(keys);
    return rc;
}

struct due {
    struct tg_spool_meta meta;
    struct tg_spool_blob request;
};

/* Reads up to c->max due records into rows (*n of them). */
static int read_due(struct tg_store *s, const struct tg_spool_claim *c, struct due *rows, size_t *n)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_DUE);
    bool row = true;
    int rc = TG_OK;

    *n = 0;
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, c->route);
    sqlite3_bind_int64(st, 2, c->now_ms);
    sqlite3_bind_int(st, 3, c->hold ? TG_SPOOL_DEAD : TG_SPOOL_QUEUED);
    sqlite3_bind_int(st, 4, (int)c->max);
    sqlite3_bind_int(st, 5, c->hold ? TG_SPOOL_UNKNOWN : TG_SPOOL_DELIVERING);
    while (rc == TG_OK && *n < c->max) {
        rc = step(s, st, &row, "due");
        if (rc != TG_OK || !row) {
            break;
        }
        read_meta(st, &rows[*n].meta);
        rc = copy_blob(st, META_COLS, &rows[*n].request);
        *n += rc == TG_OK;
    }
    sqlite3_reset(st);
    return rc;
}

int tg_sqlite_claim(struct tg_store *s, const struct tg_spool_claim *c, tg_spool_claim_fn *fn,
                    void *arg)
{
    struct due *rows = c->max > 0 ? calloc(c->max, sizeof(*rows)) : NULL;
    size_t n = 0;
    size_t i = 0;
    int rc = sweep_dead(s, c);

    if (rc == TG_OK && c->max > 0 && rows == NULL) {
        rc = TG_ENOMEM;
    }
    rc = rc != TG_OK || c->max == 0 ? rc : read_due(s, c, rows, &n);
    /* Taken only once read: the select and the updates do not share a cursor. */
    for (; rc == TG_OK && i < n; i++) {
        sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_TAKE);
        if (st == NULL) {
            rc = TG_EINTERNAL;
            break;
        }
        sqlite3_bind_int64(st, 1, rows[i].meta.seq);
        sqlite3_bind_int64(st, 2, c->now_ms);
        rc = run(s, st, "take");
        rows[i].meta.state = TG_SPOOL_DELIVERING;
        rows[i].meta.attempts++;
        rows[i].meta.updated_ms = c->now_ms;
    }
    for (i = 0; i < n; i++) {
        if (rc == TG_OK) {
            fn(arg, &rows[i].meta, &rows[i].request); /* takes the blob */
        }
        tg_spool_blob_cleanup(&rows[i].request);
    }
    free(rows);
    return rc;
}

int tg_sqlite_mark(struct tg_store *s, const struct tg_spool_mark *m)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_MARK);
    int kept = 0;
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, m->id);
    sqlite3_bind_int(st, 2, m->state);
    sqlite3_bind_int(st, 3, m->upstream_status);
    bind_text(st, 4, m->reason != NULL ? m->reason : "");
    sqlite3_bind_int64(st, 5, m->next_ms);
    sqlite3_bind_int64(st, 6, m->now_ms);
    rc = run(s, st, "mark");
    if (rc == TG_OK && sqlite3_changes(s->db) == 0) {
        return TG_ENOTFOUND; /* removed by an operator meanwhile */
    }
    if (rc == TG_OK && m->state != TG_SPOOL_QUEUED && m->state != TG_SPOOL_DELIVERING) {
        uint8_t key[TG_SPOOL_MAC_LEN];
        bool has = false;
        rc = order_of(s, m->id, key, &has);
        rc = rc != TG_OK || !has ? rc : unblock(s, key, m->now_ms, m->hold);
    }
    if (rc == TG_OK && m->answer != NULL) {
        rc = tg_sqlite_answer(s, m->id, m->answer_status, m->answer, m->answer_len, m->now_ms,
                              &kept, NULL);
    }
    return rc;
}

/* ---- upkeep -----------------------------------------------------------------------------------
 */

int tg_sqlite_expire(struct tg_store *s, int64_t answer_before_ms, int64_t done_before_ms)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_EXPIRE_ANSWERS);
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    sqlite3_bind_int64(st, 1, answer_before_ms);
    rc = run(s, st, "expire");
    st = rc == TG_OK ? tg_sqlite_stmt(s, TG_SQL_EXPIRE_DONE) : NULL;
    if (st == NULL) {
        return rc == TG_OK ? TG_EINTERNAL : rc;
    }
    sqlite3_bind_int64(st, 1, done_before_ms);
    return run(s, st, "expire");
}

struct stranded {
    char id[TG_SPOOL_ID_LEN + 1];
    bool resend;
};

/* The records left delivering, each with whether its route may send it again. */
static int list_stranded(struct tg_store *s, bool (*resend_ok)(const char *route, void *arg),
                         void *arg, struct stranded **out, size_t *n)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_RECOVER_LIST);
    size_t cap = 0;
    bool row = true;
    int rc = TG_OK;

    *out = NULL;
    *n = 0;
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    while (rc == TG_OK) {
        rc = step(s, st, &row, "recover");
        if (rc != TG_OK || !row) {
            break;
        }
        if (*n == cap) {
            struct stranded *p = realloc(*out, (cap = cap * 2 + 16) * sizeof(*p));
            if (p == NULL) {
                rc = TG_ENOMEM;
                break;
            }
            *out = p;
        }
        copy_text(st, 0, (*out)[*n].id, sizeof((*out)[*n].id));
        (*out)[*n].resend = resend_ok((const char *)sqlite3_column_text(st, 1), arg);
        (*n)++;
    }
    sqlite3_reset(st);
    return rc;
}

int tg_sqlite_recover(struct tg_store *s, bool (*resend_ok)(const char *route, void *arg),
                      void *arg, int64_t now_ms, unsigned *requeued, unsigned *unknown)
{
    struct stranded *rows = NULL;
    size_t n = 0;
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_RECOVER_PROGRESS);
    int rc = st == NULL ? TG_EINTERNAL : run(s, st, "recover");

    *requeued = 0;
    *unknown = 0;
    rc = rc != TG_OK ? rc : list_stranded(s, resend_ok, arg, &rows, &n);
    for (size_t i = 0; rc == TG_OK && i < n; i++) {
        st = tg_sqlite_stmt(s, TG_SQL_RECOVER_SET);
        if (st == NULL) {
            rc = TG_EINTERNAL;
            break;
        }
        bind_text(st, 1, rows[i].id);
        sqlite3_bind_int(st, 2, rows[i].resend ? TG_SPOOL_QUEUED : TG_SPOOL_UNKNOWN);
        bind_text(st, 3,
                  rows[i].resend ? "restart during an attempt: sent again"
                                 : "restart during an attempt; the backend cannot deduplicate");
        sqlite3_bind_int64(st, 4, now_ms);
        rc = run(s, st, "recover");
        *(rows[i].resend ? requeued : unknown) += 1;
    }
    free(rows);
    return rc;
}

int tg_sqlite_counts(struct tg_store *s, bool all, struct tg_spool_counts *out)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, all ? TG_SQL_COUNTS : TG_SQL_COUNTS_OPEN);
    bool row = true;
    int rc = TG_OK;

    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    while (rc == TG_OK) {
        rc = step(s, st, &row, "counts");
        if (rc != TG_OK || !row) {
            break;
        }
        int state = sqlite3_column_int(st, 0);
        if (state >= 0 && state < TG_SPOOL_STATES) {
            out->by_state[state] = (uint64_t)sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_reset(st);
    st = rc == TG_OK ? tg_sqlite_stmt(s, TG_SQL_OLDEST) : NULL;
    if (st != NULL) {
        rc = step(s, st, &row, "counts");
        out->oldest_open_ms = rc == TG_OK && row ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    }
    out->bytes = tg_sqlite_bytes(s);
    return rc;
}

static int64_t pragma_int(struct tg_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

int tg_sqlite_has_room(struct tg_store *s, bool *room)
{
    int64_t pages;
    int64_t free_pages;

    *room = true;
    if (s->quota_pages == 0) {
        return TG_OK;
    }
    pages = pragma_int(s, "PRAGMA page_count");
    free_pages = pragma_int(s, "PRAGMA freelist_count");
    if (pages < 0 || free_pages < 0) {
        return TG_EINTERNAL;
    }
    *room = pages - free_pages < s->quota_pages;
    return TG_OK;
}

int tg_sqlite_reusable(struct tg_store *s, uint64_t *bytes)
{
    int64_t free_pages = pragma_int(s, "PRAGMA freelist_count");
    int64_t page = pragma_int(s, "PRAGMA page_size");

    if (free_pages < 0 || page < 0) {
        return TG_EINTERNAL;
    }
    *bytes = (uint64_t)free_pages * (uint64_t)page;
    return TG_OK;
}

/* ---- the operator's ---------------------------------------------------------------------------
 */

int tg_sqlite_list(struct tg_store *s, int state, const char *route, unsigned limit,
                   tg_spool_claim_fn *fn, void *arg)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_LIST);
    bool row = true;
    int rc = TG_OK;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    sqlite3_bind_int(st, 1, state);
    bind_text(st, 2, route);
    sqlite3_bind_int64(st, 3, limit);
    while (rc == TG_OK) {
        struct tg_spool_meta m;
        struct tg_spool_blob none = {0};
        rc = step(s, st, &row, "list");
        if (rc != TG_OK || !row) {
            break;
        }
        read_meta(st, &m);
        fn(arg, &m, &none);
    }
    sqlite3_reset(st);
    return rc;
}

/* One statement on one id that must change a row: TG_ENOTFOUND when it changed none. */
static int on_id(struct tg_store *s, enum tg_sql which, const char *id, int64_t now_ms,
                 const char *what)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, which);
    int rc;

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, id);
    if (which == TG_SQL_REPLAY) {
        sqlite3_bind_int64(st, 2, now_ms);
    }
    rc = run(s, st, what);
    return rc == TG_OK && sqlite3_changes(s->db) == 0 ? TG_ENOTFOUND : rc;
}

int tg_sqlite_replay(struct tg_store *s, const char *id, int64_t now_ms)
{
    return on_id(s, TG_SQL_REPLAY, id, now_ms, "replay");
}

int tg_sqlite_remove(struct tg_store *s, const char *id, int64_t now_ms)
{
    uint8_t key[TG_SPOOL_MAC_LEN];
    bool has = false;
    int rc = order_of(s, id, key, &has);

    rc = rc != TG_OK ? rc : on_id(s, TG_SQL_REMOVE, id, 0, "remove");
    /* An operator's removal lets the next one go unless a dead or unknown one still holds it:
     * the CLI does not know the route's on_dead, and holding is the side that keeps order. */
    return rc != TG_OK || !has ? rc : unblock(s, key, now_ms, true);
}

int tg_sqlite_audit(struct tg_store *s, int64_t now_ms, const char *action, const char *id,
                    const char *detail, long uid)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_AUDIT);

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    bind_text(st, 2, action);
    bind_text(st, 3, id);
    bind_text(st, 4, detail);
    sqlite3_bind_int64(st, 5, uid);
    return run(s, st, "audit");
}

int tg_sqlite_meta_get(struct tg_store *s, const char *name, struct tg_spool_blob *out)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_META_GET);
    bool row = false;
    int rc;

    out->p = NULL;
    out->len = 0;
    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, name);
    rc = step(s, st, &row, "meta");
    if (rc == TG_OK && !row) {
        rc = TG_ENOTFOUND;
    }
    if (rc == TG_OK) {
        rc = copy_blob(st, 0, out);
    }
    sqlite3_reset(st);
    return rc;
}

int tg_sqlite_meta_put(struct tg_store *s, const char *name, const uint8_t *p, size_t len)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_META_PUT);

    if (st == NULL) {
        return TG_EINTERNAL;
    }
    bind_text(st, 1, name);
    bind_blob(st, 2, p, len);
    return run(s, st, "meta");
}
