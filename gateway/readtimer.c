#include "gateway/readtimer.h"

void tg_readtimer_stop(struct tg_readtimer *t, struct tg_readtimer_entry *e)
{
    if (!e->listed) {
        return;
    }
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        t->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        t->tail = e->prev;
    }
    e->prev = e->next = NULL;
    e->listed = false;
}

void tg_readtimer_start(struct tg_readtimer *t, struct tg_readtimer_entry *e, uint64_t now_us)
{
    tg_readtimer_stop(t, e);
    e->since_us = now_us;
    e->prev = t->tail;
    e->next = NULL;
    if (t->tail != NULL) {
        t->tail->next = e;
    } else {
        t->head = e;
    }
    t->tail = e;
    e->listed = true;
}

size_t tg_readtimer_expire(struct tg_readtimer *t, uint64_t now_us,
                           void (*expired)(void *arg, int fd), void *arg)
{
    size_t n = 0;

    while (t->head != NULL && now_us - t->head->since_us >= t->limit_us) {
        struct tg_readtimer_entry *e = t->head;
        tg_readtimer_stop(t, e);
        expired(arg, e->fd);
        n++;
    }
    return n;
}

uint64_t tg_readtimer_next_us(const struct tg_readtimer *t, uint64_t now_us)
{
    uint64_t due;

    if (t->head == NULL) {
        return UINT64_MAX;
    }
    due = t->head->since_us + t->limit_us;
    return due > now_us ? due - now_us : 0;
}
