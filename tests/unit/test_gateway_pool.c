/* Unit tests for gateway/pool.c and gateway/outlier.c: where a call goes (balance, usable
 * targets, panic), the bulkhead, and what answers do to a target (ejection). Time is passed in,
 * so every test decides its own clock. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/pool.h"
#include "gateway/retry.h"
#include "routes/table.h"
#include "tests/support/unit/tmpconf.h"

#define SEC UINT64_C(1000000)

static struct tg_conf *conf;

static void teardown(void)
{
    tg_conf_unref(conf);
    conf = NULL;
    tmpconf_remove();
}

TestSuite(pool, .fini = teardown, .timeout = 10);

/* Loads an upstream "u" with the given members (JSON text after "u": {) and returns it. */
static const struct tg_upstream *upstream(const char *members)
{
    char text[2048], err[TG_CONF_ERR_MAX] = "";

    snprintf(text, sizeof(text), "{\"upstreams\": {\"u\": {%s}}}", members);
    cr_assert(
        eq(int, tg_conf_load(tmpconf_write("pool", text), NULL, &conf, err, sizeof(err)), TG_OK),
        "%s", err);
    return &conf->upstreams[0];
}

static size_t pick(const struct tg_upstream *u, uint64_t tried, uint64_t now, uint64_t rnd)
{
    const char *why = NULL;
    size_t idx = 99;

    cr_assert(eq(int, tg_pool_admit(u, tried, now, rnd, 0.5, &idx, &why), TG_OK), "%s", why);
    return idx;
}

static void fail_n(const struct tg_upstream *u, size_t i, unsigned n, enum tg_outcome o,
                   uint64_t now)
{
    for (unsigned k = 0; k < n; k++) {
        tg_pool_begin(u, i);
        tg_pool_end(u, i, o, now);
    }
}

static bool ejected(const struct tg_upstream *u, size_t i, uint64_t now)
{
    return atomic_load(&u->targets[i].state->ejected_until_us) > now;
}

Test(pool, least_request_sends_to_the_target_with_fewer_calls)
{
    const struct tg_upstream *u = upstream("\"targets\": [\"http://a\", \"http://b\"]");

    tg_pool_begin(u, 0);
    tg_pool_begin(u, 0);
    for (uint64_t r = 0; r < 200; r++) {
        /* two targets: both are drawn every time, the idle one wins */
        cr_assert(eq(sz, pick(u, 0, SEC, r * 0x9E3779B97F4A7C15u), 1));
    }
}

Test(pool, least_request_spreads_idle_targets)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\", \"http://d\"]");
    unsigned seen[4] = {0};

    for (uint64_t r = 0; r < 400; r++) {
        seen[pick(u, 0, SEC, r * 0x9E3779B97F4A7C15u + 12345)]++;
    }
    for (size_t i = 0; i < 4; i++) {
        cr_assert(gt(u32, seen[i], 50), "target %zu got %u of 400", i, seen[i]);
    }
}

Test(pool, round_robin_follows_the_weights)
{
    const struct tg_upstream *u =
        upstream("\"balance\": \"round_robin\", \"targets\": "
                 "[\"http://a\", {\"url\": \"http://b\", \"weight\": 2}]");
    unsigned seen[2] = {0};

    for (int k = 0; k < 300; k++) {
        seen[pick(u, 0, SEC, 0)]++;
    }
    cr_assert(eq(u32, seen[0], 100));
    cr_assert(eq(u32, seen[1], 200));
}

Test(pool, a_retry_goes_to_a_target_not_tried_when_there_is_one)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\"]");

    for (uint64_t r = 0; r < 100; r++) {
        size_t i = pick(u, 1u | 4u, SEC, r * 7919);
        cr_assert(eq(sz, i, 1));
    }
    /* every target tried: any usable one will do */
    cr_assert(lt(sz, pick(u, 7u, SEC, 3), 3));
}

Test(pool, five_failures_in_a_row_eject_for_the_base_time)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\"]");

    fail_n(u, 0, 4, TG_OUT_STATUS, SEC);
    cr_assert(not(ejected(u, 0, SEC)), "four are not five");
    fail_n(u, 0, 1, TG_OUT_CONNECT, SEC);
    cr_assert(ejected(u, 0, SEC));
    cr_assert(eq(u64, atomic_load(&u->targets[0].state->ejected_until_us), SEC + 30u * SEC));
    cr_assert(eq(u64, atomic_load(&u->targets[0].state->stats.ejections), 1));
    cr_assert(not(tg_pool_usable(u, 0, 2 * SEC)));
    cr_assert(eq(sz, tg_pool_usable_count(u, 2 * SEC), 2));
    for (uint64_t r = 0; r < 100; r++) {
        cr_assert(ne(sz, pick(u, 0, 2 * SEC, r * 104729), 0));
    }
    /* over at its end */
    cr_assert(tg_pool_usable(u, 0, 31 * SEC));
    cr_assert(eq(u64, atomic_load(&u->targets[0].state->ejected_until_us), 0));
}

Test(pool, answers_break_the_streak_but_429_does_not_count)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\"]");

    fail_n(u, 0, 4, TG_OUT_TIMEOUT, SEC);
    fail_n(u, 0, 1, TG_OUT_OK, SEC); /* a 404 is an answer: the target works */
    fail_n(u, 0, 4, TG_OUT_RESET, SEC);
    cr_assert(not(ejected(u, 0, SEC)));
    fail_n(u, 0, 10, TG_OUT_BACKPRESSURE, SEC);
    fail_n(u, 0, 10, TG_OUT_NONE, SEC);
    cr_assert(not(ejected(u, 0, SEC)), "429 and cancels are neither failures nor successes");
    fail_n(u, 0, 1, TG_OUT_STATUS, SEC);
    cr_assert(ejected(u, 0, SEC), "the fifth failure in a row");
    cr_assert(eq(u64, atomic_load(&u->targets[0].state->stats.backpressure), 10));
    cr_assert(eq(u64, atomic_load(&u->targets[0].state->stats.failed_reset), 4));
}

Test(pool, at_most_half_the_targets_are_ejected)
{
    const struct tg_upstream *u = upstream("\"targets\": [\"http://a\", \"http://b\"]");
    const struct tg_upstream *one;

    fail_n(u, 0, 5, TG_OUT_STATUS, SEC);
    fail_n(u, 1, 50, TG_OUT_STATUS, SEC);
    cr_assert(ejected(u, 0, SEC));
    cr_assert(not(ejected(u, 1, SEC)), "the second of two would be more than half");
    tg_conf_unref(conf);
    conf = NULL;
    one = upstream("\"url\": \"http://a\"");
    fail_n(one, 0, 50, TG_OUT_CONNECT, SEC);
    cr_assert(not(ejected(one, 0, SEC)), "a lone target is never ejected: the breaker guards it");
}

Test(pool, ejections_grow_and_are_capped)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\"], \"outlier\": "
                 "{\"base_ejection_ms\": 1000, \"max_ejection_ms\": 2500}");
    const struct tg_target_state *t = u->targets[0].state;
    uint64_t now = SEC;

    fail_n(u, 0, 5, TG_OUT_STATUS, now);
    cr_assert(eq(u64, atomic_load(&t->ejected_until_us), now + 1 * SEC));
    now += 1 * SEC; /* back; fails again at once */
    cr_assert(tg_pool_usable(u, 0, now));
    fail_n(u, 0, 5, TG_OUT_STATUS, now);
    cr_assert(eq(u64, atomic_load(&t->ejected_until_us), now + 2 * SEC));
    now += 2 * SEC;
    cr_assert(tg_pool_usable(u, 0, now));
    fail_n(u, 0, 5, TG_OUT_STATUS, now);
    cr_assert(eq(u64, atomic_load(&t->ejected_until_us), now + 2500000u), "capped");
    now += 3 * SEC;
    cr_assert(tg_pool_usable(u, 0, now));
    /* serving well for two base periods takes two steps off the multiplier */
    now += 2 * SEC;
    fail_n(u, 0, 5, TG_OUT_STATUS, now);
    cr_assert(eq(u64, atomic_load(&t->ejected_until_us), now + 2 * SEC));
}

Test(pool, panic_uses_ejected_targets_but_never_down_ones)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\", \"http://d\"]");
    unsigned seen[4] = {0};

    fail_n(u, 0, 5, TG_OUT_STATUS, SEC);
    atomic_store(&u->targets[1].state->down, true);
    atomic_store(&u->targets[2].state->down, true);
    /* one of four usable: fewer than half, so the ejection is ignored */
    for (uint64_t r = 0; r < 200; r++) {
        seen[pick(u, 0, SEC, r * 0x9E3779B97F4A7C15u)]++;
    }
    cr_assert(gt(u32, seen[0], 0));
    cr_assert(gt(u32, seen[3], 0));
    cr_assert(eq(u32, seen[1] + seen[2], 0));
}

Test(pool, nothing_usable_is_refused_at_once_with_a_retry_after)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\"], \"health_check\": {\"path\": \"/h\", "
                 "\"interval_ms\": 2500}");
    const char *why = NULL;
    size_t idx;

    atomic_store(&u->targets[0].state->down, true);
    atomic_store(&u->targets[1].state->down, true);
    cr_assert(eq(int, tg_pool_admit(u, 0, SEC, 1, 0.5, &idx, &why), TG_EUNSTABLE));
    cr_assert(eq(str, (char *)why, "no usable target"));
    cr_assert(atomic_load(&u->pool->unstable));
    cr_assert(eq(u64, atomic_load(&u->pool->stats.rejected_no_target), 1));
    cr_assert(eq(u32, tg_pool_retry_after_s(u, SEC), 3), "one health check interval, rounded up");
    atomic_store(&u->targets[1].state->down, false);
    cr_assert(eq(u32, tg_pool_retry_after_s(u, SEC), 1));
    cr_assert(eq(sz, pick(u, 0, SEC, 5), 1));
    /* recovered on a success, once a second passed without a refusal */
    tg_pool_begin(u, 1);
    tg_pool_end(u, 1, TG_OUT_OK, SEC + SEC / 2);
    cr_assert(atomic_load(&u->pool->unstable), "refused half a second ago");
    tg_pool_begin(u, 1);
    tg_pool_end(u, 1, TG_OUT_OK, 2 * SEC);
    cr_assert(not(atomic_load(&u->pool->unstable)));
}

Test(pool, a_passed_health_check_ends_an_ejection)
{
    const struct tg_upstream *u =
        upstream("\"targets\": [\"http://a\", \"http://b\", \"http://c\"]");

    fail_n(u, 2, 5, TG_OUT_STATUS, SEC);
    cr_assert(ejected(u, 2, SEC));
    tg_pool_uneject(u, 2, 2 * SEC);
    cr_assert(tg_pool_usable(u, 2, 2 * SEC));
    cr_assert(eq(u64, atomic_load(&u->targets[2].state->back_since_us), 2 * SEC));
}

Test(pool, the_bulkhead_counts_every_worker_together)
{
    const struct tg_upstream *u = upstream("\"url\": \"http://a\", \"max_in_flight\": 2");

    cr_assert(eq(int, tg_pool_enter(u), TG_OK));
    cr_assert(eq(int, tg_pool_enter(u), TG_OK));
    cr_assert(eq(int, tg_pool_enter(u), TG_EOVERLOAD));
    cr_assert(eq(u32, atomic_load(&u->pool->in_flight), 2));
    tg_pool_leave(u);
    cr_assert(eq(int, tg_pool_enter(u), TG_OK));
    cr_assert(eq(u64, atomic_load(&u->pool->stats.rejected_overload), 1));
}

Test(pool, the_retry_budget_is_a_share_of_the_calls_in_flight_with_a_floor)
{
    const struct tg_upstream *u = upstream("\"url\": \"http://a\"");
    int ok = 0;

    for (int i = 0; i < 10; i++) {
        ok += tg_retry_budget_take(u) == TG_OK;
    }
    cr_assert(eq(int, ok, 3), "the floor: 3");
    for (int i = 0; i < 3; i++) {
        tg_retry_budget_give(u);
    }
    atomic_store(&u->pool->in_flight, 100);
    ok = 0;
    for (int i = 0; i < 30; i++) {
        ok += tg_retry_budget_take(u) == TG_OK;
    }
    cr_assert(eq(int, ok, 20), "20 %% of 100 calls in flight");
    cr_assert(eq(u64, atomic_load(&u->pool->stats.retries_refused), 17));
}

Test(pool, the_breaker_refuses_and_says_so)
{
    const struct tg_upstream *u = upstream("\"url\": \"http://a\"");
    const char *why = NULL;
    size_t idx;

    fail_n(u, 0, 20, TG_OUT_CONNECT, SEC);
    /* ratio (20 - 5) / 21: a draw above it goes, below it does not */
    cr_assert(eq(int, tg_pool_admit(u, 0, SEC, 1, 0.1, &idx, &why), TG_OK), "the probe");
    cr_assert(eq(int, tg_pool_admit(u, 0, SEC, 1, 0.1, &idx, &why), TG_EUNSTABLE));
    cr_assert(eq(str, (char *)why, "breaker open"));
    cr_assert(eq(int, tg_pool_admit(u, 0, SEC, 1, 0.9, &idx, &why), TG_OK));
    cr_assert(atomic_load(&u->pool->unstable));
    cr_assert(eq(u64, atomic_load(&u->pool->stats.rejected_breaker), 1));
}
