#ifndef TG_GATEWAY_LIST_H
#define TG_GATEWAY_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The one linked list of the house (libuv's queue): a circular, doubly linked ring whose
 * links live inside the objects they chain. A head is a struct tg_list of its own, set up with
 * tg_list_init; an empty ring points at itself. Nothing allocates; nothing locks. */
struct tg_list {
    struct tg_list *prev;
    struct tg_list *next;
};

/* The object that holds link, a pointer to its member field. */
#define TG_LIST_ENTRY(link, type, field) ((type *)(void *)((char *)(link)-offsetof(type, field)))

/* Walks head; the body may remove the current link (next is read first). */
#define TG_LIST_FOREACH_SAFE(pos, nxt, head)                         \
    for ((pos) = (head)->next, (nxt) = (pos)->next; (pos) != (head); \
         (pos) = (nxt), (nxt) = (pos)->next)

static inline void tg_list_init(struct tg_list *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool tg_list_is_empty(const struct tg_list *head)
{
    return head->next == head;
}

/* Links l at the tail of head (l must not be linked). */
static inline void tg_list_push(struct tg_list *head, struct tg_list *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

/* Unlinks l and leaves it pointing at itself, so removing it twice is harmless. */
static inline void tg_list_remove(struct tg_list *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    tg_list_init(l);
}

#endif
