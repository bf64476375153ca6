/* The spool's store on SQLite (spool/store.h): one file in WAL mode, synchronous=FULL by
 * default, secure_delete on (what is deleted is overwritten), a quota through max_page_count.
 * The SQL of each operation is in spool/sqlite_sql.c; this file opens, runs and maps errors. */
#include "spool/sqlite.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "gateway/log.h"
#include "spool/sqlite_vfs.h"

#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION  1
#define WAL_LIMIT_BYTES (4 * 1024 * 1024) /* the WAL is cut back to this after a checkpoint */
#define WAL_PAGES       256               /* checkpoint after about 1 MiB of WAL */

static const char *const schema[] = {
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS records ("
    " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, route TEXT NOT NULL,"
    " scope BLOB NOT NULL, idem_key TEXT NOT NULL, fingerprint BLOB NOT NULL, order_key BLOB,"
    " state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, age_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " next_ms INTEGER NOT NULL, delivered_ms INTEGER NOT NULL DEFAULT 0,"
    " upstream_status INTEGER NOT NULL DEFAULT 0, trace_id TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '', in_progress INTEGER NOT NULL DEFAULT 0,"
    " answer_status INTEGER NOT NULL DEFAULT 0, answer_ms INTEGER NOT NULL DEFAULT 0,"
    " answer BLOB, request BLOB, UNIQUE (route, scope, idem_key))",
    "CREATE INDEX IF NOT EXISTS records_due ON records (state, next_ms)",
    /* Whether a patient has an open record: a probe per state, never a walk through everything
     * the patient ever sent. */
    "CREATE INDEX IF NOT EXISTS records_order ON records (order_key, state, seq)"
    " WHERE order_key IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS audit (at_ms INTEGER NOT NULL, action TEXT NOT NULL,"
    " id TEXT NOT NULL, detail TEXT NOT NULL, uid INTEGER NOT NULL)",
};

int tg_sqlite_rc(struct tg_store *s, int rc, const char *what)
{
    int primary = rc & 0xff;

    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) {
        return TG_OK;
    }
    tg_log(primary == SQLITE_FULL || primary == SQLITE_BUSY ? TG_LOG_WARN : TG_LOG_ERROR, NULL,
           "spool.sqlite", "%s: %s (%d): %s", what, sqlite3_errstr(rc), rc,
           s != NULL && s->db != NULL ? sqlite3_errmsg(s->db) : "");
    switch (primary) {
    case SQLITE_FULL:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return TG_ESPOOL; /* may pass: space comes back, the other writer finishes */
    case SQLITE_NOMEM:
        return TG_ENOMEM;
    default:
        return TG_EINTERNAL; /* I/O, fsync, corruption, misuse: stop using the store */
    }
}

sqlite3_stmt *tg_sqlite_stmt(struct tg_store *s, enum tg_sql which)
{
    sqlite3_stmt *st = s->stmts[which];

    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (tg_sqlite_rc(
            s,
            sqlite3_prepare_v3(s->db, tg_sql_text[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL),
            "prepare") != TG_OK) {
        return NULL;
    }
    s->stmts[which] = st;
    return st;
}

int tg_sqlite_exec(struct tg_store *s, const char *sql, const char *what)
{
    return tg_sqlite_rc(s, sqlite3_exec(s->db, sql, NULL, NULL, NULL), what);
}

/* The pragmas of a writing connection: WAL, the sync level, overwritten deletes, the quota. */
static int setup_writer(struct tg_store *s, const struct tg_store_options *o, char *err,
                        size_t errlen)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    bool wal = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;

    sqlite3_finalize(st);
    if (!wal) {
        snprintf(err, errlen, "%s: cannot switch to WAL mode: %s", o->path, sqlite3_errmsg(s->db));
        return TG_EINVAL;
    }
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous=%s; PRAGMA secure_delete=ON; PRAGMA journal_size_limit=%d; "
             "PRAGMA wal_autocheckpoint=%d",
             o->sync_full ? "FULL" : "NORMAL", WAL_LIMIT_BYTES, WAL_PAGES);
    if (tg_sqlite_exec(s, sql, "pragmas") != TG_OK) {
        snprintf(err, errlen, "%s: cannot set the pragmas: %s", o->path, sqlite3_errmsg(s->db));
        return TG_EINVAL;
    }
    if (o->max_bytes > 0) {
        /* New records stop at the quota (has_room); SQLite's own page limit sits a reserve
         * above it, so that outcomes (which free room) can still be written when the quota is
         * reached, and a write past it fails with SQLITE_FULL, as on a full disk. */
        int64_t pages = (int64_t)(o->max_bytes / 4096 > 0 ? o->max_bytes / 4096 : 1);
        int64_t reserve = pages / 8 > 256 ? pages / 8 : 256;
        s->quota_pages = pages;
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%" PRId64, pages + reserve);
        if (tg_sqlite_exec(s, sql, "quota") != TG_OK) {
            snprintf(err, errlen, "%s: cannot set the quota", o->path);
            return TG_EINVAL;
        }
    }
    return TG_OK;
}

/* Creates the tables of a new spool, or checks the version of an existing one. */
static int setup_schema(struct tg_store *s, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    char sql[64];

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (version != 0 && version != SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: spool version %d, this gateway reads %d", path, version,
                 SCHEMA_VERSION);
        return TG_EINVAL;
    }
    if (version == SCHEMA_VERSION) {
        return TG_OK;
    }
    if (tg_sqlite_exec(s, "BEGIN IMMEDIATE", "schema") != TG_OK) {
        snprintf(err, errlen, "%s: cannot create the spool: %s", path, sqlite3_errmsg(s->db));
        return TG_EINVAL;
    }
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
        if (tg_sqlite_exec(s, schema[i], "schema") != TG_OK) {
            snprintf(err, errlen, "%s: cannot create the spool: %s", path, sqlite3_errmsg(s->db));
            tg_sqlite_exec(s, "ROLLBACK", "schema");
            return TG_EINVAL;
        }
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
    if (tg_sqlite_exec(s, sql, "schema") != TG_OK ||
        tg_sqlite_exec(s, "COMMIT", "schema") != TG_OK) {
        snprintf(err, errlen, "%s: cannot create the spool: %s", path, sqlite3_errmsg(s->db));
        tg_sqlite_exec(s, "ROLLBACK", "schema");
        return TG_EINVAL;
    }
    return TG_OK;
}

static void store_close(struct tg_store *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < TG_SQL_COUNT; i++) {
        sqlite3_finalize(s->stmts[i]);
    }
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static int store_open(const struct tg_store_options *o, struct tg_store **out, char *err,
                      size_t errlen)
{
    struct tg_store *s = calloc(1, sizeof(*s));
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (o->readonly ? 0 : SQLITE_OPEN_CREATE);
    int rc;

    *out = NULL;
    if (s == NULL || (s->path = strdup(o->path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", o->path);
        store_close(s);
        return TG_ENOMEM;
    }
    if (tg_spool_vfs_register() != TG_OK) {
        snprintf(err, errlen, "%s: cannot register the spool's SQLite VFS", o->path);
        store_close(s);
        return TG_EINVAL;
    }
    rc = sqlite3_open_v2(o->path, &s->db, flags, TG_SPOOL_VFS);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open the spool: %s", o->path,
                 s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        store_close(s);
        return TG_EINVAL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    rc = o->readonly ? tg_sqlite_exec(s, "PRAGMA query_only=ON", "pragmas")
                     : setup_writer(s, o, err, errlen);
    if (rc == TG_OK && !o->readonly) {
        rc = setup_schema(s, o->path, err, errlen);
    }
    if (rc != TG_OK) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s: cannot open the spool", o->path);
        }
        store_close(s);
        return TG_EINVAL;
    }
    *out = s;
    return TG_OK;
}

static int store_begin(struct tg_store *s)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_BEGIN);

    return st == NULL ? TG_EINTERNAL : tg_sqlite_rc(s, sqlite3_step(st), "begin");
}

static int store_commit(struct tg_store *s)
{
    sqlite3_stmt *st = tg_sqlite_stmt(s, TG_SQL_COMMIT);
    int rc = st == NULL ? TG_EINTERNAL : tg_sqlite_rc(s, sqlite3_step(st), "commit");

    if (st != NULL) {
        sqlite3_reset(st);
    }
    return rc;
}

/* After a failed statement SQLite may have rolled back already: then there is nothing to do. */
static void store_rollback(struct tg_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        tg_sqlite_exec(s, "ROLLBACK", "rollback");
    }
}

uint64_t tg_sqlite_bytes(struct tg_store *s)
{
    char wal[4096 + 8];
    struct stat st;
    uint64_t n = 0;

    if (stat(s->path, &st) == 0) {
        n += (uint64_t)st.st_size;
    }
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    if (stat(wal, &st) == 0) {
        n += (uint64_t)st.st_size;
    }
    return n;
}

const struct tg_store_ops tg_store_sqlite = {
    .name = "sqlite",
    .open = store_open,
    .close = store_close,
    .begin = store_begin,
    .commit = store_commit,
    .rollback = store_rollback,
    .put = tg_sqlite_put,
    .get = tg_sqlite_get,
    .answer = tg_sqlite_answer,
    .claim = tg_sqlite_claim,
    .mark = tg_sqlite_mark,
    .expire = tg_sqlite_expire,
    .recover = tg_sqlite_recover,
    .counts = tg_sqlite_counts,
    .has_room = tg_sqlite_has_room,
    .reusable = tg_sqlite_reusable,
    .list = tg_sqlite_list,
    .replay = tg_sqlite_replay,
    .remove = tg_sqlite_remove,
    .audit = tg_sqlite_audit,
    .meta_get = tg_sqlite_meta_get,
    .meta_put = tg_sqlite_meta_put,
};
