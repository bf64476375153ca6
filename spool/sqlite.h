#ifndef TG_SPOOL_SQLITE_H
#define TG_SPOOL_SQLITE_H

/* Private to the SQLite store (spool/sqlite.c: opening, pragmas, errors; spool/sqlite_ops.c:
 * the operations and their SQL). Everyone else goes through spool/store.h. */

#include <stdint.h>

#include "spool/store.h"

struct sqlite3;
struct sqlite3_stmt;

/* Every statement the store runs, prepared once on first use. */
enum tg_sql {
    TG_SQL_BEGIN = 0,
    TG_SQL_COMMIT,
    TG_SQL_FIND_KEY,
    TG_SQL_ORDER_OPEN,
    TG_SQL_ORDER_OF,
    TG_SQL_UNBLOCK,
    TG_SQL_INSERT,
    TG_SQL_GET,
    TG_SQL_ANSWER_SET,
    TG_SQL_ANSWER_GET,
    TG_SQL_DEAD,
    TG_SQL_DUE,
    TG_SQL_TAKE,
    TG_SQL_MARK,
    TG_SQL_EXPIRE_ANSWERS,
    TG_SQL_EXPIRE_DONE,
    TG_SQL_RECOVER_PROGRESS,
    TG_SQL_RECOVER_LIST,
    TG_SQL_RECOVER_SET,
    TG_SQL_COUNTS,
    TG_SQL_COUNTS_OPEN,
    TG_SQL_OLDEST,
    TG_SQL_LIST,
    TG_SQL_REPLAY,
    TG_SQL_REMOVE,
    TG_SQL_AUDIT,
    TG_SQL_META_GET,
    TG_SQL_META_PUT,
    TG_SQL_COUNT,
};

/* The text of each statement, indexed by enum tg_sql (spool/sqlite_ops.c). */
extern const char *const tg_sql_text[TG_SQL_COUNT];

struct tg_store {
    struct sqlite3 *db;
    char *path;          /* owned */
    int64_t quota_pages; /* new records stop here (0: no quota) */
    struct sqlite3_stmt *stmts[TG_SQL_COUNT];
};

/* Maps a SQLite result to TG_OK / TG_ESPOOL (full, busy) / TG_ENOMEM / TG_EINTERNAL, logging
 * what failed (what) and SQLite's message. */
int tg_sqlite_rc(struct tg_store *s, int rc, const char *what);

/* The statement which, reset with no bindings, or NULL (logged) when it cannot be prepared. */
struct sqlite3_stmt *tg_sqlite_stmt(struct tg_store *s, enum tg_sql which);

/* Runs sql (no result rows). */
int tg_sqlite_exec(struct tg_store *s, const char *sql, const char *what);

/* Bytes of the database file and its WAL. */
uint64_t tg_sqlite_bytes(struct tg_store *s);

/* The operations of struct tg_store_ops (spool/sqlite_ops.c). */
int tg_sqlite_put(struct tg_store *s, const struct tg_spool_put *put,
                  struct tg_spool_put_result *out);
int tg_sqlite_get(struct tg_store *s, const char *id, struct tg_spool_meta *out,
                  struct tg_spool_blob *answer);
int tg_sqlite_answer(struct tg_store *s, const char *id, int status, const uint8_t *blob,
                     size_t len, int64_t now_ms, int *kept_status, struct tg_spool_blob *kept);
int tg_sqlite_claim(struct tg_store *s, const struct tg_spool_claim *c, tg_spool_claim_fn *fn,
                    void *arg);
int tg_sqlite_mark(struct tg_store *s, const struct tg_spool_mark *m);
int tg_sqlite_expire(struct tg_store *s, int64_t answer_before_ms, int64_t done_before_ms);
int tg_sqlite_recover(struct tg_store *s, bool (*resend_ok)(const char *route, void *arg),
                      void *arg, int64_t now_ms, unsigned *requeued, unsigned *unknown);
int tg_sqlite_counts(struct tg_store *s, bool all, struct tg_spool_counts *out);
int tg_sqlite_has_room(struct tg_store *s, bool *room);
int tg_sqlite_reusable(struct tg_store *s, uint64_t *bytes);
int tg_sqlite_list(struct tg_store *s, int state, const char *route, unsigned limit,
                   tg_spool_claim_fn *fn, void *arg);
int tg_sqlite_replay(struct tg_store *s, const char *id, int64_t now_ms);
int tg_sqlite_remove(struct tg_store *s, const char *id, int64_t now_ms);
int tg_sqlite_audit(struct tg_store *s, int64_t now_ms, const char *action, const char *id,
                    const char *detail, long uid);
int tg_sqlite_meta_get(struct tg_store *s, const char *name, struct tg_spool_blob *out);
int tg_sqlite_meta_put(struct tg_store *s, const char *name, const uint8_t *p, size_t len);

#endif
