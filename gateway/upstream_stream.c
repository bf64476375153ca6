/* Streamed bodies of upstream calls: a request body taken from its ring as curl sends it, an
 * answer put into its ring as curl receives it (gateway/stream.h), curl paused and resumed as
 * the rings fill and empty, and the timer that bounds a streamed transfer in place of curl's
 * total timeout. The transfers themselves (the only libcurl calls) are upstream.c's. */
#include <stdlib.h>
#include <string.h>

#include "gateway/req.h"
#include "gateway/stream.h"
#include "gateway/upstream.h"
#include "gateway/upstream_internal.h"

#define IDLE_DEFAULT_MS 30000u

/* ---- the timer ---------------------------------------------------------------------------- */

static void timer_unlink(struct tg_up_call *call)
{
    if (call->st.due_us != 0) {
        tg_list_remove(&call->st.link);
        call->st.due_us = 0;
    }
}

/* (Re)arms the call's timer at due, kept in due order; searched from the tail, where a later
 * time usually goes. */
static void timer_set(struct tg_up_call *call, uint64_t due)
{
    struct tg_list *head = &call->up->timed;
    struct tg_list *pos;

    timer_unlink(call);
    pos = head->prev;
    while (pos != head && TG_LIST_ENTRY(pos, struct tg_up_call, st.link)->st.due_us > due) {
        pos = pos->prev;
    }
    call->st.link.prev = pos;
    call->st.link.next = pos->next;
    pos->next->prev = &call->st.link;
    pos->next = &call->st.link;
    call->st.due_us = due > 0 ? due : 1;
}

static void timer_idle(struct tg_up_call *call, uint64_t now)
{
    call->st.idle = true;
    call->st.last_us = now;
    timer_set(call, now + (uint64_t)call->st.idle_ms * 1000u);
}

/* The gateway holds the transfer back (the client reads or sends slower than the upstream):
 * the client's side is waited on, not the upstream's. */
static bool held_back(const struct tg_up_call *call)
{
    return call->x.recv_paused || (call->x.send_paused && !call->st.sent_all);
}

/* When the timer has really run out: the deadline, or idle_ms after the last bytes moved. */
static uint64_t timer_due(const struct tg_up_call *call, uint64_t now)
{
    uint64_t idle = (uint64_t)call->st.idle_ms * 1000u;

    if (!call->st.idle) {
        return call->st.deadline_us;
    }
    return held_back(call) ? now + idle : call->st.last_us + idle;
}

void tg_up_stream_run_timers(struct tg_up *up)
{
    uint64_t now = tg_now_us();

    /* Lazy: moving bytes only stamps last_us; the list is sorted again when an entry is due. */
    while (!tg_list_is_empty(&up->timed)) {
        struct tg_up_call *call = TG_LIST_ENTRY(up->timed.next, struct tg_up_call, st.link);
        uint64_t due;
        if (call->st.due_us > now) {
            return;
        }
        due = timer_due(call, now);
        if (due > now) {
            timer_set(call, due);
            continue;
        }
        timer_unlink(call);
        tg_up_call_expire(call, call->st.idle ? "stream idle timeout" : "deadline exceeded");
    }
}

long tg_up_stream_next_ms(const struct tg_up *up)
{
    uint64_t due, now;

    if (tg_list_is_empty(&up->timed)) {
        return -1;
    }
    due = TG_LIST_ENTRY(up->timed.next, struct tg_up_call, st.link)->st.due_us;
    now = tg_now_us();
    return now >= due ? 0 : (long)((due - now + 999) / 1000);
}

/* ---- the two rings ------------------------------------------------------------------------ */

/* The request body's ring has bytes (or its end, or was stopped): curl may read again. */
static void wake_send(void *arg)
{
    tg_up_xfer_resume(arg, false);
}

/* The answer's ring has room again: curl may write again. */
static void wake_recv(void *arg)
{
    tg_up_xfer_resume(arg, true);
}

void tg_up_stream_prepare(struct tg_up_call *call, const struct tg_up_request *r)
{
    tg_list_init(&call->st.link);
    call->st.send = r->body_stream;
    call->st.head = r->head;
    call->st.idle_ms = r->idle_ms > 0 ? r->idle_ms : IDLE_DEFAULT_MS;
    if (call->st.send != NULL) {
        tg_stream_on_data(call->st.send, wake_send, call);
    }
}

void tg_up_stream_started(struct tg_up_call *call)
{
    call->st.head_seen = false;
    if (call->st.send != NULL) {
        timer_idle(call, tg_now_us());
    }
}

long tg_up_stream_read(struct tg_up_call *call, char *buf, size_t n)
{
    struct tg_stream *s = call->st.send;
    size_t k;
    uint64_t now;

    if (tg_stream_err(s) != TG_OK) {
        return TG_UP_READ_ABORT;
    }
    if (call->x.send_off < call->send_len) {
        /* What the request held before its body streamed (a chunked body past the threshold). */
        k = call->send_len - call->x.send_off < n ? call->send_len - call->x.send_off : n;
        memcpy(buf, call->send + call->x.send_off, k);
        call->x.send_off += k;
        call->st.last_us = tg_now_us();
        return (long)k;
    }
    k = tg_stream_take(s, buf, n);
    if (k > 0) {
        call->st.last_us = tg_now_us();
        return (long)k;
    }
    if (!tg_stream_is_done(s)) {
        tg_stream_wait(s);
        return TG_UP_READ_WAIT;
    }
    if (!call->st.sent_all) {
        /* The whole body went out: the answer's head is due within the attempt's time. */
        now = tg_now_us();
        call->st.sent_all = true;
        if (call->st.recv == NULL) {
            call->st.idle = false;
            call->st.deadline_us = now + (uint64_t)call->timeout_ms * 1000u;
            timer_set(call, call->st.deadline_us);
        }
    }
    return 0;
}

bool tg_up_stream_head(struct tg_up_call *call, int status, int64_t length)
{
    struct tg_stream *s;

    if (call->st.head_seen || status < 200) {
        return false; /* an interim 1xx, or the trailers of a chunked answer */
    }
    call->st.head_seen = true;
    if (call->st.head == NULL) {
        return false;
    }
    s = call->st.head(call->arg, call, status, length);
    if (s == NULL) {
        return false;
    }
    call->st.recv = s;
    tg_stream_on_room(s, wake_recv, call);
    timer_idle(call, tg_now_us());
    return true;
}

int tg_up_stream_write(struct tg_up_call *call, const char *data, size_t n)
{
    struct tg_stream *s = call->st.recv;

    if (tg_stream_err(s) != TG_OK || n > s->cap) {
        return -1; /* curl's chunks are at most 16 KiB, the ring at least 32 */
    }
    if (!tg_stream_put_all(s, data, n)) {
        return tg_stream_err(s) != TG_OK ? -1 : 0;
    }
    call->st.last_us = tg_now_us();
    return 1;
}

void tg_up_stream_finish(struct tg_up_call *call, int err)
{
    struct tg_stream *recv = call->st.recv;
    struct tg_stream *send = call->st.send;

    timer_unlink(call);
    /* The call is freed after done: nothing may wake it any more. */
    if (recv != NULL) {
        tg_stream_on_room(recv, NULL, NULL);
        if (err == TG_OK) {
            tg_stream_end(recv);
        } else {
            tg_stream_stop(recv, err);
        }
    }
    if (send != NULL) {
        tg_stream_on_data(send, NULL, NULL);
        if (!tg_stream_is_done(send)) {
            /* The rest of the body has nowhere to go: its producer drops it. */
            tg_stream_stop(send, err != TG_OK ? err : TG_ECANCELED);
        }
    }
}

bool tg_up_stream_active(const struct tg_up_call *call)
{
    return call->st.send != NULL || call->st.recv != NULL;
}
