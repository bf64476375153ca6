#ifndef TG_SPOOL_SPOOL_H
#define TG_SPOOL_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"
#include "spool/store.h"

/* The spool: where durable routes keep what they accepted until it is delivered. Two threads
 * own its store connections, so no SQLite call and no fsync ever runs on a worker's loop:
 *
 *   the writer   owns the write connection; takes every operation queued since its last commit
 *                (up to group_commit_max, after waiting group_commit_us for more when set),
 *                runs them in one transaction and commits once: one fsync for all of them (group
 *                commit). Only then is each operation's done called; done hands the news on (to
 *                a worker's loop, to the delivery thread) with tg_loop_post.
 *   the reader   owns a second, read-only connection for status lookups and the counts of
 *                /metrics: WAL readers never wait for the writer, nor the writer for them.
 *
 * Failure is loud: an I/O or fsync error (never retried: after a failed fsync the kernel may
 * have dropped the pages) marks the spool failed for good; every operation from then on fails
 * with TG_ESPOOL, readiness fails, and on_failed asks the process to stop. A full disk or quota
 * fails submissions with TG_ESPOOL until room returns, then accepts again by itself. */

struct tg_spool;
struct tg_spool_conf;
struct tg_seal_part;

enum tg_spool_op_kind {
    TG_SPOOL_OP_PUT = 0,    /* writer: a new submission (tg_spool_put) */
    TG_SPOOL_OP_ANSWER = 1, /* writer: fix a first answer */
    TG_SPOOL_OP_MARK = 2,   /* writer: a delivery outcome */
    TG_SPOOL_OP_CLAIM = 3,  /* writer: due records for the delivery thread */
    TG_SPOOL_OP_GET = 4,    /* reader: one record's metadata (the status resource) */
};

/* One operation, embedded by its owner in an object of its own, which must live until done has
 * run. Inputs are borrowed until then; outputs are valid in done (and after, for the owner). */
struct tg_spool_op {
    enum tg_spool_op_kind kind;
    int rc; /* set before done: TG_OK, TG_ENOTFOUND (no such record), TG_ESPOOL, ... */
    /* Runs once on a spool thread after the operation's transaction committed (or failed). */
    void (*done)(struct tg_spool_op *op);
    struct tg_spool_op *next; /* the spool's while queued */
    bool has_delivered;       /* MARK: a delivered outcome (for the crash point) */
    union {
        struct {
            struct tg_spool_put in;
            struct tg_spool_put_result out; /* out.answer is the owner's to clean up */
        } put;
        struct {
            const char *id;
            int status;
            const uint8_t *blob;
            size_t len;
            int kept_status;           /* out: the first answer that stands */
            struct tg_spool_blob kept; /* out: its sealed bytes, the owner's to clean up */
        } answer;
        struct {
            struct tg_spool_mark in;
            bool want_answer;          /* report the first answer that stands */
            int kept_status;           /* out */
            struct tg_spool_blob kept; /* out, the owner's to clean up */
        } mark;
        struct {
            struct tg_spool_claim in;
            tg_spool_claim_fn *fn; /* runs on the writer thread, inside the transaction */
            void *arg;
        } claim;
        struct {
            char id[TG_SPOOL_ID_LEN + 1];
            struct tg_spool_meta meta; /* out */
        } get;
    } u;
};

/* Opens the spool sc describes and starts its threads: refuses a network file system, makes the
 * directory and (for a new spool only) the key file, loads the keys, checks that they open this
 * spool, and recovers what a crash left (records left delivering become queued, or unknown
 * where resend_ok(route, arg) says the route's backend cannot deduplicate). on_failed runs once,
 * on a spool thread, when the spool fails for good. TG_OK, or TG_EINVAL with err. Main thread. */
int tg_spool_start(const struct tg_spool_conf *sc, bool (*resend_ok)(const char *route, void *arg),
                   void *arg, void (*on_failed)(void), struct tg_spool **out, char *err,
                   size_t errlen) TG_MUST_CHECK;

/* Runs what is still queued, stops the threads, closes the store. NULL is a no-op. Main thread,
 * after the workers and the delivery thread stopped. */
void tg_spool_stop(struct tg_spool *sp);

/* The process's spool (set by tg_spool_start, cleared by tg_spool_stop), or NULL. */
struct tg_spool *tg_spool_current(void);

/* Queues op for the writer (PUT, ANSWER, MARK, CLAIM) or the reader (GET). Any thread. */
void tg_spool_submit(struct tg_spool *sp, struct tg_spool_op *op);

/* True while the spool takes new submissions (not full, not failed). Any thread. */
bool tg_spool_accepting(const struct tg_spool *sp);

/* Seals plain[0..len) under the current key, bound to record id and to what ("request",
 * "answer"): *out is malloc'd. TG_OK, TG_ENOMEM or TG_EINTERNAL. Any thread. */
int tg_spool_seal(const struct tg_spool *sp, const char *id, const char *what, const void *plain,
                  size_t len, struct tg_spool_blob *out) TG_MUST_CHECK;

/* Opens what tg_spool_seal sealed for id and what: *out is malloc'd (NUL-terminated one byte
 * past *out_len). TG_OK; TG_ENOTFOUND when its key is no longer configured; TG_EINVAL when it
 * does not open. Any thread. */
int tg_spool_unseal(const struct tg_spool *sp, const char *id, const char *what,
                    const uint8_t *blob, size_t len, uint8_t **out, size_t *out_len) TG_MUST_CHECK;

/* The spool's MAC over parts (the key scope, the ordering value, a request's fingerprint),
 * under a key that stays the same across key rotations. Any thread. */
int tg_spool_mac(const struct tg_spool *sp, const struct tg_seal_part *parts, size_t n,
                 uint8_t out[TG_SPOOL_MAC_LEN]) TG_MUST_CHECK;

/* A new random record id (a version 4 UUID in text). */
void tg_spool_new_id(char out[TG_SPOOL_ID_LEN + 1]);

/* Milliseconds since the Unix epoch (what records store). */
int64_t tg_spool_now_ms(void);

/* Writes ms (Unix ms) as RFC 3339 UTC with milliseconds ("2026-01-02T03:04:05.678Z") into out
 * (at least 32 bytes). */
void tg_spool_time(int64_t ms, char *out, size_t cap);

#endif
