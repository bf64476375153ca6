#ifndef TG_SPOOL_STORE_H
#define TG_SPOOL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

/* The spool's storage interface: what the spool threads, the delivery and the operator CLI ask
 * of the place submissions are kept, with no SQL in sight. spool/sqlite.c implements it on one
 * SQLite file per gateway node (tg_store_sqlite); a PostgreSQL store for several nodes would
 * implement the same operations (README, "Durable submissions").
 *
 * A store holds records: one per accepted submission, unique per (route, scope, key). What
 * identifies a patient or holds clinical content reaches the store sealed or as a MAC
 * (spool/seal.h): the store compares bytes and never reads them. One store handle is used by
 * one thread at a time. */

#define TG_SPOOL_ID_LEN     36  /* a UUID in text */
#define TG_SPOOL_KEY_MAX    255 /* an Idempotency-Key */
#define TG_SPOOL_ROUTE_MAX  128 /* a durable route's name */
#define TG_SPOOL_TRACE_MAX  128
#define TG_SPOOL_REASON_MAX 80
#define TG_SPOOL_MAC_LEN    32
/* next_ms of a queued record that waits for an earlier one of its order key: out of every
 * claim's way until that one is done (then it is due at once). */
#define TG_SPOOL_BLOCKED_MS INT64_MAX

/* Where a record is. Stored as these numbers: never renumber. */
enum tg_spool_state {
    TG_SPOOL_QUEUED = 0,     /* accepted, waiting for its next attempt */
    TG_SPOOL_DELIVERING = 1, /* an attempt is out */
    TG_SPOOL_DELIVERED = 2,  /* the backend took it (2xx, or a duplicate status) */
    TG_SPOOL_REJECTED = 3,   /* the backend refused it (a 4xx it will not change its mind on) */
    TG_SPOOL_DEAD = 4,       /* not delivered within max_age: kept for an operator */
    TG_SPOOL_UNKNOWN = 5,    /* sent, no answer, backend cannot deduplicate: an operator decides */
};
#define TG_SPOOL_STATES 6

/* "queued", "delivering", ...; NULL for a number that is not a state. */
const char *tg_spool_state_name(int state);
/* The state named name, or -1. */
int tg_spool_state_of(const char *name);

/* What may be shown of a record (status resource, CLI, logs): no field of the submission. */
struct tg_spool_meta {
    int64_t seq; /* acceptance order */
    char id[TG_SPOOL_ID_LEN + 1];
    char route[TG_SPOOL_ROUTE_MAX + 1];
    char key[TG_SPOOL_KEY_MAX + 1];
    char trace_id[TG_SPOOL_TRACE_MAX + 1];
    char reason[TG_SPOOL_REASON_MAX + 1]; /* the last failure in a few words, or "" */
    int state;
    unsigned attempts;
    int64_t created_ms; /* acceptance, Unix ms: X-Submitted-At */
    int64_t age_ms;     /* where max_age counts from: acceptance, or the last operator replay */
    int64_t updated_ms;
    int64_t next_ms;      /* next attempt (queued); TG_SPOOL_BLOCKED_MS: waits its turn */
    int64_t delivered_ms; /* 0 until delivered */
    int upstream_status;  /* the backend's last status, 0 if none */
    int answer_status;    /* the first answer given to the client, 0 if none yet */
    bool in_progress;     /* a request of this process waits to give the first answer */
};

/* A blob the store hands out: malloc'd, freed with tg_spool_blob_cleanup. */
struct tg_spool_blob {
    uint8_t *p;
    size_t len;
};
void tg_spool_blob_cleanup(struct tg_spool_blob *b);

/* A new submission. The blobs are sealed, the MACs made by the caller; borrowed. */
struct tg_spool_put {
    const char *id; /* fresh: a new record gets it */
    const char *route;
    const char *key;
    const char *trace_id;
    const uint8_t *scope;       /* MAC of the key scope (TG_SPOOL_MAC_LEN) */
    const uint8_t *fingerprint; /* MAC of method, path and body (TG_SPOOL_MAC_LEN) */
    const uint8_t *order_key;   /* MAC of the ordering value, or NULL: no order */
    const uint8_t *request;     /* sealed request (spool/codec.h) */
    size_t request_len;
    const uint8_t *accepted; /* sealed 202 answer, fixed now when no attempt starts */
    size_t accepted_len;
    bool attempt; /* try to deliver at once (mode on_failure) when its order key is free */
    bool hold;    /* on_dead "hold": dead and unknown records block their order key */
    int64_t now_ms;
};

/* What put did. */
struct tg_spool_put_result {
    bool created; /* a new record under put->id; else meta is the record already there */
    bool attempt; /* created in state delivering: its first attempt goes out now */
    bool same;    /* not created: the fingerprint matches */
    struct tg_spool_meta meta;   /* the record (new or existing) */
    struct tg_spool_blob answer; /* not created and answered: the sealed first answer, if kept */
};

/* A delivery outcome for one record. */
struct tg_spool_mark {
    const char *id;
    int state;           /* QUEUED (retry), DELIVERED, REJECTED, DEAD or UNKNOWN */
    int upstream_status; /* 0: none arrived */
    const char *reason;  /* a few words, no PHI; may be NULL */
    int64_t next_ms;     /* QUEUED: when to try again */
    int64_t now_ms;
    bool hold; /* on_dead "hold": DEAD and UNKNOWN keep their order key's next waiting */
    /* When the record has no answer yet and this is given: fix it as the first answer. */
    const uint8_t *answer;
    size_t answer_len;
    int answer_status;
};

/* A record claimed for delivery: its metadata and sealed request (owned by the callee). */
typedef int tg_spool_claim_fn(void *arg, const struct tg_spool_meta *m,
                              struct tg_spool_blob *request);

/* What to claim: due records of route, oldest due first, at most max, with order: only the
 * first open record (queued or delivering; with hold also dead or unknown) of each order key.
 * With sweep, records past max_age (age_ms <= dead_before_ms) become dead first (dead_fn for
 * each): a scan of every queued record, so callers sweep now and then, not on every claim. */
struct tg_spool_claim {
    const char *route;
    int64_t now_ms;
    int64_t dead_before_ms;
    bool sweep;
    bool hold;
    unsigned max;
    tg_spool_claim_fn *dead_fn; /* may be NULL; the blob is empty */
    void *arg;
};

/* Counts for metrics. */
struct tg_spool_counts {
    uint64_t by_state[TG_SPOOL_STATES];
    int64_t oldest_open_ms; /* created_ms of the oldest queued or delivering record, 0 if none */
    uint64_t bytes;         /* database and WAL */
};

/* Settings for open. */
struct tg_store_options {
    const char *path;
    bool readonly;      /* status reads, CLI list/show: never writes */
    bool sync_full;     /* synchronous=FULL (every commit reaches the disk), else NORMAL */
    uint64_t max_bytes; /* quota on the database file; 0 = none */
};

struct tg_store;

/* The operations. Each returns TG_OK or a negative tg_err: TG_ESPOOL when the store is full
 * (disk or quota: the caller may try again later), TG_EINTERNAL when it failed (an I/O or fsync
 * error, corruption: the caller must stop using it), TG_ENOTFOUND where said. Errors are logged
 * by the store with what the library said. */
struct tg_store_ops {
    const char *name;
    int (*open)(const struct tg_store_options *o, struct tg_store **out, char *err, size_t errlen);
    void (*close)(struct tg_store *s); /* NULL-safe */
    /* A write transaction: everything between begin and commit is durable together. */
    int (*begin)(struct tg_store *s);
    int (*commit)(struct tg_store *s);
    void (*rollback)(struct tg_store *s);
    /* Inserts put as a new record, or finds the one (route, scope, key) already names. */
    int (*put)(struct tg_store *s, const struct tg_spool_put *put, struct tg_spool_put_result *out);
    /* The record id, with its sealed answer when want_answer (TG_ENOTFOUND if none). */
    int (*get)(struct tg_store *s, const char *id, struct tg_spool_meta *out,
               struct tg_spool_blob *answer);
    /* Fixes the record's first answer if it has none and clears in_progress; either way *status
     * and *kept (malloc'd copy, may be empty) get the answer that stands. */
    int (*answer)(struct tg_store *s, const char *id, int status, const uint8_t *blob, size_t len,
                  int64_t now_ms, int *kept_status, struct tg_spool_blob *kept);
    /* Claims due records (see struct tg_spool_claim): each becomes delivering, its attempts
     * one more, and fn gets it. */
    int (*claim)(struct tg_store *s, const struct tg_spool_claim *c, tg_spool_claim_fn *fn,
                 void *arg);
    /* Records an outcome; the sealed request is dropped on DELIVERED and REJECTED. */
    int (*mark)(struct tg_store *s, const struct tg_spool_mark *m);
    /* Forgets kept answers older than answer_before_ms and records delivered or rejected
     * before done_before_ms. Never touches open, dead or unknown records. */
    int (*expire)(struct tg_store *s, int64_t answer_before_ms, int64_t done_before_ms);
    /* At start: no request of the new process waits (in_progress cleared), and each record
     * left delivering becomes queued, or unknown when resend_ok says its route's backend
     * cannot deduplicate. *requeued and *unknown get the counts. */
    int (*recover)(struct tg_store *s, bool (*resend_ok)(const char *route, void *arg), void *arg,
                   int64_t now_ms, unsigned *requeued, unsigned *unknown);
    /* all false: only the open states (queued, delivering, dead, unknown: cheap, an index
     * range); delivered and rejected are then left 0. */
    int (*counts)(struct tg_store *s, bool all, struct tg_spool_counts *out);
    /* Whether a new record fits the quota now (room freed by deliveries counts). The quota
     * keeps a reserve beyond it, so that outcomes can still be recorded when it is reached. */
    int (*has_room)(struct tg_store *s, bool *room);
    /* Bytes inside the store that new records can reuse without the file growing (what
     * deliveries and expiry freed). */
    int (*reusable)(struct tg_store *s, uint64_t *bytes);
    /* The operator's: records in state (-1: any) of route (NULL: any), oldest first, at most
     * limit; replay (dead or unknown -> queued now, age from now); remove one record (the
     * next one of its order key is let go, unless a dead or unknown one still holds it). */
    int (*list)(struct tg_store *s, int state, const char *route, unsigned limit,
                tg_spool_claim_fn *fn, void *arg);
    int (*replay)(struct tg_store *s, const char *id, int64_t now_ms);
    int (*remove)(struct tg_store *s, const char *id, int64_t now_ms);
    /* An audit line for an operator's action (no PHI: ids and reasons). */
    int (*audit)(struct tg_store *s, int64_t now_ms, const char *action, const char *id,
                 const char *detail, long uid);
    /* Small named values the spool keeps beside its records (the sealed index key). */
    int (*meta_get)(struct tg_store *s, const char *name, struct tg_spool_blob *out);
    int (*meta_put)(struct tg_store *s, const char *name, const uint8_t *p, size_t len);
};

extern const struct tg_store_ops tg_store_sqlite;

#endif
