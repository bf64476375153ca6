#ifndef TG_GATEWAY_SERIES_H
#define TG_GATEWAY_SERIES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Labelled metric series of one worker (gateway/metrics.c declares the families): a fixed
 * table of slots, filled only by the worker's own thread and never emptied while the worker
 * lives, so any thread may read it without a lock. A series is published with a release store
 * once its labels are written; its values are written by the owner with relaxed stores and read
 * with relaxed loads. */

#define TG_SERIES_LABELS_MAX 3
#define TG_SERIES_SLOTS      4096 /* per worker: routes x methods x classes, upstreams x outcomes */

/* One series: a family and its label values. */
struct tg_series {
    unsigned family;                          /* index in the families table */
    uint64_t hash;                            /* of family and labels */
    const char *labels[TG_SERIES_LABELS_MAX]; /* owned copies (in this allocation), or NULL */
    size_t n_values;
    _Atomic uint64_t values[]; /* what the family keeps: a count, a gauge, histogram buckets */
};

struct tg_series_table {
    _Atomic(struct tg_series *) slots[TG_SERIES_SLOTS];
    _Atomic uint64_t overflow; /* updates dropped because the table was full */
};

/* The series of family with the n labels (copied when the series is made), holding n_values
 * values; made on first use. NULL when the table is full or memory ran out (counted in
 * t->overflow). Owner thread only. */
struct tg_series *tg_series_get(struct tg_series_table *t, unsigned family,
                                const char *const *labels, size_t n, size_t n_values);

/* The series in slot i, or NULL (i < TG_SERIES_SLOTS). Any thread. */
static inline const struct tg_series *tg_series_at(const struct tg_series_table *t, size_t i)
{
    return atomic_load_explicit(&((struct tg_series_table *)t)->slots[i], memory_order_acquire);
}

/* Adds n to value i of s, as TG_STAT_ADD does: one writer, no locked instruction. */
static inline void tg_series_add(struct tg_series *s, size_t i, uint64_t n)
{
    atomic_store_explicit(&s->values[i],
                          atomic_load_explicit(&s->values[i], memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Frees every series. No other thread may read t any more. */
void tg_series_cleanup(struct tg_series_table *t);

#endif
