#include "gateway/readtimer.h"

void tg_readtimer_init(struct tg_readtimer *t, uint64_t limit_us)
{
    tg_list_init(&t->entries);
    t->limit_us = limit_us;
}

void tg_readtimer_entry_init(struct tg_readtimer_entry *e, int fd)
{
    e->fd = fd;
    e->since_us = 0;
    tg_list_init(&e->link);
}

bool tg_readtimer_is_empty(const struct tg_readtimer *t)
{
    return tg_list_is_empty(&t->entries);
}

void tg_readtimer_stop(struct tg_readtimer *t, struct tg_readtimer_entry *e)
{
    (void)t;
    tg_list_remove(&e->link); /* harmless when not listed: it points at itself */
}

void tg_readtimer_start(struct tg_readtimer *t, struct tg_readtimer_entry *e, uint64_t now_us)
{
    tg_list_remove(&e->link);
    e->since_us = now_us;
    tg_list_push(&t->entries, &e->link);
}

static struct tg_readtimer_entry *head(const struct tg_readtimer *t)
{
    return TG_LIST_ENTRY(t->entries.next, struct tg_readtimer_entry, link);
}

size_t tg_readtimer_expire(struct tg_readtimer *t, uint64_t now_us,
                           void (*expired)(void *arg, int fd), void *arg)
{
    size_t n = 0;

    while (!tg_list_is_empty(&t->entries) && now_us - head(t)->since_us >= t->limit_us) {
        struct tg_readtimer_entry *e = head(t);
        tg_list_remove(&e->link);
        expired(arg, e->fd);
        n++;
    }
    return n;
}

uint64_t tg_readtimer_next_us(const struct tg_readtimer *t, uint64_t now_us)
{
    uint64_t due;

    if (tg_list_is_empty(&t->entries)) {
        return UINT64_MAX;
    }
    due = head(t)->since_us + t->limit_us;
    return due > now_us ? due - now_us : 0;
}
