/* Labelled series of one worker: an insert-only open-addressing table (see series.h for who
 * may read and write what). */
#include "gateway/series.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the family and the labels, each label ended by a NUL so "a","bc" differs from
 * "ab","c". */
static uint64_t hash_of(unsigned family, const char *const *labels, size_t n)
{
    uint64_t h = 1469598103934665603u ^ family;

    for (size_t i = 0; i < n; i++) {
        for (const char *p = labels[i]; *p != '\0'; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211u;
        }
        h = h * 1099511628211u;
    }
    return h;
}

static bool same(const struct tg_series *s, unsigned family, uint64_t h, const char *const *labels,
                 size_t n)
{
    if (s->family != family || s->hash != h) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->labels[i], labels[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* A new series with its label copies after the values, in one allocation. */
static struct tg_series *series_new(unsigned family, uint64_t h, const char *const *labels,
                                    size_t n, size_t n_values)
{
    size_t text = 0;
    struct tg_series *s;
    char *p;

    for (size_t i = 0; i < n; i++) {
        text += strlen(labels[i]) + 1;
    }
    s = calloc(1, sizeof(*s) + n_values * sizeof(s->values[0]) + text);
    if (s == NULL) {
        return NULL;
    }
    s->family = family;
    s->hash = h;
    s->n_values = n_values;
    p = (char *)&s->values[n_values];
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(labels[i]) + 1;
        memcpy(p, labels[i], len);
        s->labels[i] = p;
        p += len;
    }
    return s;
}

struct tg_series *tg_series_get(struct tg_series_table *t, unsigned family,
                                const char *const *labels, size_t n, size_t n_values)
{
    uint64_t h = hash_of(family, labels, n);
    size_t i = (size_t)(h % TG_SERIES_SLOTS);

    if (n > TG_SERIES_LABELS_MAX) {
        return NULL;
    }
    for (size_t probe = 0; probe < TG_SERIES_SLOTS; probe++) {
        /* Relaxed is enough here: only this thread ever stores into the slots. */
        struct tg_series *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (s == NULL) {
            s = series_new(family, h, labels, n, n_values);
            if (s == NULL) {
                break;
            }
            /* Release: a reader that sees the pointer sees the labels written above. */
            atomic_store_explicit(&t->slots[i], s, memory_order_release);
            return s;
        }
        if (same(s, family, h, labels, n)) {
            return s;
        }
        i = (i + 1) % TG_SERIES_SLOTS;
    }
    atomic_fetch_add_explicit(&t->overflow, 1, memory_order_relaxed);
    return NULL;
}

void tg_series_cleanup(struct tg_series_table *t)
{
    for (size_t i = 0; i < TG_SERIES_SLOTS; i++) {
        free(atomic_exchange(&t->slots[i], NULL));
    }
}
