#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/stream.h"

static int producer_wakes;
static int consumer_wakes;

static void on_room(void *arg)
{
    (void)arg;
    producer_wakes++;
}

static void on_data(void *arg)
{
    (void)arg;
    consumer_wakes++;
}

static void setup(void)
{
    producer_wakes = 0;
    consumer_wakes = 0;
}

TestSuite(stream, .init = setup, .timeout = 10);

static void make(struct tg_stream *s, size_t cap, int64_t length)
{
    cr_assert(eq(int, tg_stream_init(s, cap, length), TG_OK));
    tg_stream_on_room(s, on_room, NULL);
    tg_stream_on_data(s, on_data, NULL);
}

Test(stream, bytes_come_out_in_order_across_the_wrap)
{
    struct tg_stream s;
    char out[16];
    char all[64];
    size_t got = 0;

    make(&s, 8, -1);
    /* 26 letters through an 8-byte ring, 5 in and 3 out at a time: the ring wraps often. */
    for (size_t in = 0; in < 26 || s.len > 0;) {
        char chunk[5];
        size_t n = 26 - in < 5 ? 26 - in : 5;
        for (size_t i = 0; i < n; i++) {
            chunk[i] = (char)('a' + in + i);
        }
        in += tg_stream_put(&s, chunk, n);
        got += tg_stream_take(&s, all + got, 3);
    }
    cr_assert(eq(sz, got, 26));
    cr_assert(eq(int, memcmp(all, "abcdefghijklmnopqrstuvwxyz", 26), 0));
    cr_assert(eq(sz, tg_stream_take(&s, out, sizeof(out)), 0));
    tg_stream_cleanup(&s);
}

Test(stream, put_all_takes_a_chunk_whole_or_not_at_all)
{
    struct tg_stream s;
    char out[8];

    make(&s, 8, -1);
    cr_assert(tg_stream_put_all(&s, "abcdef", 6));
    cr_assert(not(tg_stream_put_all(&s, "ghij", 4)), "4 bytes do not fit in 2");
    cr_assert(eq(sz, s.len, 6), "nothing of the refused chunk was put");
    cr_assert(s.producer_waits);
    cr_assert(eq(sz, tg_stream_take(&s, out, 1), 1));
    cr_assert(eq(int, producer_wakes, 0), "3 free bytes are not the 4 it needs");
    cr_assert(eq(sz, tg_stream_take(&s, out, 1), 1));
    cr_assert(eq(int, producer_wakes, 1), "4 free now: the producer goes on");
    cr_assert(tg_stream_put_all(&s, "ghij", 4));
    tg_stream_cleanup(&s);
}

Test(stream, a_partial_put_waits_for_half_the_ring)
{
    struct tg_stream s;
    char out[8];

    make(&s, 8, -1);
    cr_assert(eq(sz, tg_stream_put(&s, "0123456789", 10), 8));
    cr_assert(s.producer_waits);
    cr_assert(eq(sz, tg_stream_take(&s, out, 1), 1));
    cr_assert(eq(int, producer_wakes, 0), "1 free, 2 wanted");
    cr_assert(eq(sz, tg_stream_take(&s, out, 1), 1));
    cr_assert(eq(int, producer_wakes, 1));
    tg_stream_cleanup(&s);
}

Test(stream, a_waiting_consumer_is_woken_once_by_data)
{
    struct tg_stream s;

    make(&s, 8, -1);
    tg_stream_wait(&s);
    cr_assert(tg_stream_put_all(&s, "a", 1));
    cr_assert(tg_stream_put_all(&s, "b", 1));
    cr_assert(eq(int, consumer_wakes, 1), "woken by the first bytes only");
    tg_stream_cleanup(&s);
}

Test(stream, known_length_keeps_its_last_byte_until_the_end)
{
    struct tg_stream s;
    char out[8];

    make(&s, 8, 4);
    cr_assert(tg_stream_put_all(&s, "abcd", 4));
    cr_assert(eq(sz, tg_stream_take(&s, out, 8), 3));
    cr_assert(eq(sz, tg_stream_take(&s, out, 8), 0));
    cr_assert(not(tg_stream_is_done(&s)));
    tg_stream_wait(&s);
    tg_stream_end(&s);
    cr_assert(eq(int, consumer_wakes, 1), "the end wakes the consumer");
    cr_assert(eq(sz, tg_stream_take(&s, out, 8), 1));
    cr_assert(eq(chr, out[0], 'd'));
    cr_assert(tg_stream_is_done(&s));
    tg_stream_cleanup(&s);
}

Test(stream, unknown_length_hands_out_everything)
{
    struct tg_stream s;
    char out[8];

    make(&s, 8, -1);
    cr_assert(tg_stream_put_all(&s, "abcd", 4));
    cr_assert(eq(sz, tg_stream_take(&s, out, 8), 4));
    cr_assert(not(tg_stream_is_done(&s)), "not ended yet");
    tg_stream_end(&s);
    cr_assert(tg_stream_is_done(&s));
    tg_stream_cleanup(&s);
}

Test(stream, an_end_short_of_the_length_is_a_failure)
{
    struct tg_stream s;

    make(&s, 8, 5);
    cr_assert(tg_stream_put_all(&s, "abcd", 4));
    tg_stream_end(&s);
    cr_assert(eq(int, tg_stream_err(&s), TG_EINTERNAL));
    cr_assert(not(tg_stream_is_done(&s)));
    tg_stream_cleanup(&s);
}

Test(stream, stop_wakes_both_sides_and_refuses_more)
{
    struct tg_stream s;
    char out[8];

    make(&s, 4, -1);
    cr_assert(eq(sz, tg_stream_put(&s, "abcdef", 6), 4));
    tg_stream_wait(&s);
    tg_stream_stop(&s, TG_EUPSTREAM);
    tg_stream_stop(&s, TG_ETIMEDOUT);
    cr_assert(eq(int, tg_stream_err(&s), TG_EUPSTREAM), "the first cause stays");
    cr_assert(eq(int, producer_wakes, 1));
    cr_assert(eq(int, consumer_wakes, 1));
    cr_assert(eq(sz, tg_stream_put(&s, "x", 1), 0));
    cr_assert(not(tg_stream_put_all(&s, "x", 1)));
    cr_assert(eq(sz, tg_stream_take(&s, out, 8), 0));
    cr_assert(not(s.producer_waits), "a stopped stream makes nobody wait");
    tg_stream_cleanup(&s);
}
