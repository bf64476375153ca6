#ifndef TG_GATEWAY_READTIMER_H
#define TG_GATEWAY_READTIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/list.h"

/* How long a client connection may take to deliver a request (head and body), counted from
 * when it became ready for one: accepted, or its previous answer sent. libmicrohttpd's own
 * timeout only measures silence, so a client trickling one byte a second would hold its
 * connection forever. Entries wait in a list ordered by that start time (each one joins at the
 * tail with the current time), so expiry looks only at the head. One worker thread. */
struct tg_readtimer_entry {
    int fd;
    uint64_t since_us;
    struct tg_list link; /* in the timer's list while timed; points at itself otherwise */
};

struct tg_readtimer {
    struct tg_list entries; /* oldest first */
    uint64_t limit_us;
};

/* Sets up t (caller storage) with no entry. */
void tg_readtimer_init(struct tg_readtimer *t, uint64_t limit_us);

/* Sets up e (caller storage) for fd, not timed. */
void tg_readtimer_entry_init(struct tg_readtimer_entry *e, int fd);

/* Whether any entry is timed. */
bool tg_readtimer_is_empty(const struct tg_readtimer *t);

/* e (caller storage) starts its clock at now_us: at accept, and after each answer. */
void tg_readtimer_start(struct tg_readtimer *t, struct tg_readtimer_entry *e, uint64_t now_us);

/* e stops being timed: its request is complete, or the connection is gone. Idempotent. */
void tg_readtimer_stop(struct tg_readtimer *t, struct tg_readtimer_entry *e);

/* Takes every entry whose clock passed the limit off the list and calls expired(arg, fd) for
 * it. Returns how many. */
size_t tg_readtimer_expire(struct tg_readtimer *t, uint64_t now_us,
                           void (*expired)(void *arg, int fd), void *arg);

/* Microseconds until the head expires; UINT64_MAX when nothing is timed. */
uint64_t tg_readtimer_next_us(const struct tg_readtimer *t, uint64_t now_us);

#endif
