#ifndef TG_SPOOL_SPOOL_INTERNAL_H
#define TG_SPOOL_SPOOL_INTERNAL_H

/* Private to spool/spool.c (start, stop, keys, sealing) and spool/threads.c (the writer and the
 * reader). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool/seal.h"
#include "spool/spool.h"

/* Operations waiting for one thread. */
struct op_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct tg_spool_op *head; /* oldest first */
    struct tg_spool_op **tail;
    bool stop;
};

struct tg_spool {
    /* what the conf said, copied: a reload keeps the running spool */
    char *path; /* owned */
    char *dir;  /* owned: its directory (free disk) */
    uint64_t min_free_bytes;
    unsigned key_ttl_s;
    unsigned response_ttl_s;
    unsigned group_commit_us;
    unsigned group_commit_max;

    struct tg_seal_keys keys;             /* owned: keys[0] seals */
    uint8_t index_key[TG_SEAL_KEY_BYTES]; /* MACs: the same across key rotations */
    const struct tg_store_ops *ops;
    struct tg_store *wstore; /* the writer's */
    struct tg_store *rstore; /* the reader's */

    struct op_queue wq, rq;
    pthread_t writer, reader;
    bool writer_running, reader_running;
    atomic_bool failed;
    atomic_bool counts_dirty; /* a commit changed records: the reader counts again soon */
    void (*on_failed)(void);

    /* the writer's own (no lock) */
    int64_t next_expire_ms;
    int64_t next_probe_ms;
    bool full; /* the last submission failed for room, or free disk is short */
};

/* Starts the writer and reader threads (spool/threads.c). TG_OK or TG_EINTERNAL. */
int tg_spool_threads_start(struct tg_spool *sp);

/* Stops them after what is queued ran. */
void tg_spool_threads_stop(struct tg_spool *sp);

/* Initialises a queue; tg_spool_queue_push adds op and wakes the thread. */
void tg_spool_queue_init(struct op_queue *q);
void tg_spool_queue_push(struct op_queue *q, struct tg_spool_op *op);
void tg_spool_queue_cleanup(struct op_queue *q);

#endif
