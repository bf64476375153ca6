/* Unit tests for the SQLite store (spool/sqlite.c, spool/sqlite_ops.c) through the storage
 * interface: one record per (route, scope, key), the first answer fixed once, claims that keep
 * a patient's order, deaths by age, recovery after a crash, expiry that never touches what is
 * undelivered, the quota, the operator's actions, and a failed fsync. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sqlite3.h>

#include "gateway/err.h"
#include "gateway/testhook.h"
#include "spool/store.h"
#include "tests/support/unit/tmpdir.h"

static const struct tg_store_ops *ops = &tg_store_sqlite;
static struct tg_store *st;

static void setup(void)
{
    tmpdir_make("store");
}

static void teardown(void)
{
    ops->close(st);
    st = NULL;
    tmpdir_remove();
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 20);

static void open_store(uint64_t max_bytes)
{
    struct tg_store_options o = {tmpdir_path("spool.db"), false, true, max_bytes};
    char err[256] = "";

    cr_assert(eq(int, ops->open(&o, &st, err, sizeof(err)), TG_OK), "%s", err);
}

static uint8_t macs[8][TG_SPOOL_MAC_LEN];

static const uint8_t *mac(int i)
{
    memset(macs[i], 'a' + i, TG_SPOOL_MAC_LEN);
    return macs[i];
}

/* A put of key under route "r" with fingerprint fp, order key ord (-1: none). */
static struct tg_spool_put put_of(const char *id, const char *key, int fp, int ord, bool attempt)
{
    static const uint8_t request[] = "sealed request";
    static const uint8_t accepted[] = "sealed 202";
    struct tg_spool_put p = {
        .id = id,
        .route = "r",
        .key = key,
        .trace_id = "trace-1",
        .scope = mac(0),
        .fingerprint = mac(fp),
        .order_key = ord >= 0 ? mac(ord) : NULL,
        .request = request,
        .request_len = sizeof(request),
        .accepted = accepted,
        .accepted_len = sizeof(accepted),
        .attempt = attempt,
        .now_ms = 1000,
    };

    return p;
}

static struct tg_spool_put_result do_put(const struct tg_spool_put *p)
{
    struct tg_spool_put_result r;

    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->put(st, p, &r), TG_OK));
    cr_assert(eq(int, ops->commit(st), TG_OK));
    return r;
}

static void do_mark(const char *id, int state, int64_t now)
{
    struct tg_spool_mark m = {.id = id, .state = state, .upstream_status = 201, .now_ms = now};

    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->mark(st, &m), TG_OK));
    cr_assert(eq(int, ops->commit(st), TG_OK));
}

/* Claims collect ids (and free the blobs they take). */
struct got {
    char ids[16][TG_SPOOL_ID_LEN + 1];
    size_t n;
    size_t dead;
};

static int collect(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *request)
{
    struct got *g = arg;

    if (g->n < 16) {
        snprintf(g->ids[g->n++], sizeof(g->ids[0]), "%s", m->id);
    }
    tg_spool_blob_cleanup(request);
    return TG_OK;
}

static int count_dead(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *request)
{
    struct got *g = arg;

    (void)m;
    (void)request;
    g->dead++;
    return TG_OK;
}

static struct got claim_at(int64_t now, bool hold, int64_t dead_before)
{
    struct got g = {0};
    struct tg_spool_claim c = {
        .route = "r",
        .now_ms = now,
        .dead_before_ms = dead_before,
        .sweep = dead_before > 0,
        .hold = hold,
        .max = 16,
        .dead_fn = count_dead,
        .arg = &g,
    };

    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->claim(st, &c, collect, &g), TG_OK));
    cr_assert(eq(int, ops->commit(st), TG_OK));
    return g;
}

Test(store, one_record_per_route_scope_and_key)
{
    struct tg_spool_put p = put_of("id-1", "k1", 1, -1, false);
    struct tg_spool_put_result r;

    open_store(0);
    r = do_put(&p);
    cr_expect(r.created);
    cr_expect(eq(int, r.meta.answer_status, 202), "no attempt: the 202 is the first answer");
    p.id = "id-2";
    r = do_put(&p);
    cr_expect(not(r.created));
    cr_expect(r.same);
    cr_expect(eq(str, r.meta.id, "id-1"));
    cr_expect(eq(sz, r.answer.len, sizeof("sealed 202")), "the kept answer comes with it");
    tg_spool_blob_cleanup(&r.answer);
    p.fingerprint = mac(2);
    r = do_put(&p);
    cr_expect(not(r.created));
    cr_expect(not(r.same), "another body under the same key");
    tg_spool_blob_cleanup(&r.answer);
    p.scope = mac(3);
    p.id = "id-3";
    r = do_put(&p);
    cr_expect(r.created, "the same key in another scope is another record");
}

Test(store, an_attempt_starts_only_when_the_order_key_is_free)
{
    struct tg_spool_put a = put_of("a", "ka", 1, 5, true);
    struct tg_spool_put b = put_of("b", "kb", 1, 5, true);
    struct tg_spool_put c = put_of("c", "kc", 1, 6, true);
    struct tg_spool_put_result r;

    open_store(0);
    r = do_put(&a);
    cr_expect(r.attempt);
    cr_expect(eq(int, r.meta.state, TG_SPOOL_DELIVERING));
    cr_expect(r.meta.in_progress);
    cr_expect(eq(int, r.meta.answer_status, 0));
    r = do_put(&b);
    cr_expect(not(r.attempt), "a is still open: b waits its turn");
    cr_expect(eq(int, r.meta.answer_status, 202));
    r = do_put(&c);
    cr_expect(r.attempt, "another patient is not held up");
}

Test(store, the_first_answer_is_fixed_once)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, true);
    struct tg_spool_blob kept = {0};
    struct tg_spool_meta m;
    int status = 0;

    open_store(0);
    do_put(&a);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_expect(eq(int, ops->answer(st, "a", 201, (const uint8_t *)"first", 5, 2000, &status, &kept),
                 TG_OK));
    cr_expect(eq(int, status, 201));
    tg_spool_blob_cleanup(&kept);
    cr_expect(eq(int, ops->answer(st, "a", 202, (const uint8_t *)"later", 5, 3000, &status, &kept),
                 TG_OK));
    cr_expect(eq(int, status, 201), "the second answer does not replace the first");
    cr_expect(eq(sz, kept.len, 5));
    cr_expect(memcmp(kept.p, "first", 5) == 0);
    tg_spool_blob_cleanup(&kept);
    cr_expect(eq(int, ops->answer(st, "nope", 202, NULL, 0, 3000, &status, NULL), TG_ENOTFOUND));
    cr_assert(eq(int, ops->commit(st), TG_OK));
    cr_assert(eq(int, ops->get(st, "a", &m, NULL), TG_OK));
    cr_expect(not(m.in_progress));
}

Test(store, claims_keep_each_order_key_in_acceptance_order)
{
    struct tg_spool_put a = put_of("a", "ka", 1, 5, false);
    struct tg_spool_put b = put_of("b", "kb", 1, 5, false);
    struct tg_spool_put c = put_of("c", "kc", 1, -1, false);
    struct got g;

    open_store(0);
    do_put(&a);
    do_put(&b);
    do_put(&c);
    g = claim_at(999, false, 0);
    cr_expect(eq(sz, g.n, 0), "nothing is due before its time");
    g = claim_at(1000, false, 0);
    cr_assert(eq(sz, g.n, 2), "a and c, not b behind a");
    cr_expect(eq(str, g.ids[0], "a"));
    cr_expect(eq(str, g.ids[1], "c"));
    g = claim_at(1001, false, 0);
    cr_expect(eq(sz, g.n, 0), "a is out: b still waits");
    do_mark("a", TG_SPOOL_DELIVERED, 1002);
    g = claim_at(1003, false, 0);
    cr_assert(eq(sz, g.n, 1));
    cr_expect(eq(str, g.ids[0], "b"));
}

Test(store, with_hold_a_dead_record_keeps_its_key_waiting)
{
    struct tg_spool_put a = put_of("a", "ka", 1, 5, false);
    struct tg_spool_put b = put_of("b", "kb", 1, 5, false);
    struct got g;
    struct tg_spool_meta m;

    open_store(0);
    a.hold = b.hold = true;
    do_put(&a);
    b.now_ms = 5000;
    do_put(&b);
    g = claim_at(6000, true, 1000); /* a is past its age, b is not */
    cr_expect(eq(sz, g.dead, 1));
    cr_expect(eq(sz, g.n, 0), "hold: dead a blocks b");
    cr_assert(eq(int, ops->get(st, "a", &m, NULL), TG_OK));
    cr_expect(eq(int, m.state, TG_SPOOL_DEAD));
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_expect(eq(int, ops->remove(st, "a", 7000), TG_OK), "an operator purges a");
    cr_assert(eq(int, ops->commit(st), TG_OK));
    g = claim_at(7001, true, 1000);
    cr_assert(eq(sz, g.n, 1), "b goes once a is gone");
    cr_expect(eq(str, g.ids[0], "b"));
}

Test(store, with_skip_a_dead_record_lets_the_next_one_go)
{
    struct tg_spool_put a = put_of("a", "ka", 1, 5, false);
    struct tg_spool_put b = put_of("b", "kb", 1, 5, false);
    struct tg_spool_meta m;
    struct got g;

    open_store(0);
    do_put(&a);
    b.now_ms = 5000;
    do_put(&b);
    cr_assert(eq(int, ops->get(st, "b", &m, NULL), TG_OK));
    cr_expect(eq(i64, m.next_ms, TG_SPOOL_BLOCKED_MS), "b waits for a");
    g = claim_at(6000, false, 1000);
    cr_expect(eq(sz, g.dead, 1));
    cr_assert(eq(sz, g.n, 1), "skip: b goes");
    cr_expect(eq(str, g.ids[0], "b"));
}

static bool resend_none(const char *route, void *arg)
{
    (void)route;
    (void)arg;
    return false;
}

static bool resend_all(const char *route, void *arg)
{
    (void)route;
    (void)arg;
    return true;
}

Test(store, recovery_requeues_or_parks_what_was_out)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, true);
    struct tg_spool_put b = put_of("b", "kb", 1, -1, true);
    struct tg_spool_meta m;
    unsigned requeued = 0, unknown = 0;

    open_store(0);
    do_put(&a);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->recover(st, resend_all, NULL, 2000, &requeued, &unknown), TG_OK));
    cr_assert(eq(int, ops->commit(st), TG_OK));
    cr_expect(eq(u32, requeued, 1));
    cr_assert(eq(int, ops->get(st, "a", &m, NULL), TG_OK));
    cr_expect(eq(int, m.state, TG_SPOOL_QUEUED));
    cr_expect(not(m.in_progress), "nobody in the new process waits on it");
    do_put(&b);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->recover(st, resend_none, NULL, 2000, &requeued, &unknown), TG_OK));
    cr_assert(eq(int, ops->commit(st), TG_OK));
    cr_expect(eq(u32, unknown, 1));
    cr_assert(eq(int, ops->get(st, "b", &m, NULL), TG_OK));
    cr_expect(eq(int, m.state, TG_SPOOL_UNKNOWN));
}

Test(store, expiry_drops_old_answers_and_finished_records_only)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, false);
    struct tg_spool_put d = put_of("d", "kd", 1, -1, false);
    struct tg_spool_put q = put_of("q", "kq", 1, -1, false);
    struct tg_spool_meta m;
    struct tg_spool_blob ans = {0};

    open_store(0);
    do_put(&a);
    do_put(&d);
    do_put(&q);
    do_mark("a", TG_SPOOL_DELIVERED, 1000);
    do_mark("d", TG_SPOOL_DEAD, 1000);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->expire(st, 5000, 0), TG_OK));
    cr_assert(eq(int, ops->get(st, "a", &m, &ans), TG_OK));
    cr_expect(eq(sz, ans.len, 0), "the answer is gone");
    cr_expect(eq(int, m.answer_status, 202), "what it was stays known");
    cr_assert(eq(int, ops->expire(st, 5000, 5000), TG_OK));
    cr_expect(eq(int, ops->get(st, "a", &m, NULL), TG_ENOTFOUND), "delivered and past key_ttl");
    cr_expect(eq(int, ops->get(st, "d", &m, NULL), TG_OK), "dead is never expired");
    cr_expect(eq(int, ops->get(st, "q", &m, NULL), TG_OK), "queued is never expired");
    cr_assert(eq(int, ops->commit(st), TG_OK));
}

Test(store, the_quota_refuses_then_space_returns_after_delivery)
{
    char body[2000];
    char id[32], key[32];
    struct tg_spool_put p = put_of("x", "k", 1, -1, false);
    struct tg_spool_put_result r;
    int n = 0, rc = TG_OK;

    memset(body, 'x', sizeof(body));
    p.request = (const uint8_t *)body;
    p.request_len = sizeof(body);
    open_store((uint64_t)256 * 1024);
    while (n < 1000) {
        snprintf(id, sizeof(id), "id-%d", n);
        snprintf(key, sizeof(key), "k-%d", n);
        p.id = id;
        p.key = key;
        cr_assert(eq(int, ops->begin(st), TG_OK));
        rc = ops->put(st, &p, &r);
        if (rc != TG_OK) {
            ops->rollback(st);
            break;
        }
        cr_assert(eq(int, ops->commit(st), TG_OK));
        n++;
    }
    cr_assert(eq(int, rc, TG_ESPOOL), "the quota must refuse: %d records stored", n);
    cr_expect(gt(int, n, 20));
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        do_mark(id, TG_SPOOL_DELIVERED, 2000); /* drops the request */
    }
    p.id = "after";
    p.key = "after";
    r = do_put(&p);
    cr_expect(r.created, "delivered bodies made room again");
}

Test(store, operator_replays_dead_removes_and_audits)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, false);
    struct tg_spool_meta m;
    struct got g = {0};

    open_store(0);
    do_put(&a);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_expect(eq(int, ops->replay(st, "a", 2000), TG_ENOTFOUND), "only dead or unknown");
    cr_assert(eq(int, ops->commit(st), TG_OK));
    do_mark("a", TG_SPOOL_DEAD, 1500);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_expect(eq(int, ops->list(st, TG_SPOOL_DEAD, NULL, 10, collect, &g), TG_OK));
    cr_expect(eq(sz, g.n, 1));
    cr_expect(eq(int, ops->replay(st, "a", 9000), TG_OK));
    cr_expect(eq(int, ops->audit(st, 9000, "replay", "a", "fixed upstream", 0), TG_OK));
    cr_assert(eq(int, ops->get(st, "a", &m, NULL), TG_OK));
    cr_expect(eq(int, m.state, TG_SPOOL_QUEUED));
    cr_expect(eq(i64, m.age_ms, 9000), "the age counts again from the replay");
    cr_expect(eq(i64, m.created_ms, 1000), "acceptance stays what it was");
    cr_expect(eq(int, ops->remove(st, "a", 9500), TG_OK));
    cr_expect(eq(int, ops->remove(st, "a", 9500), TG_ENOTFOUND));
    cr_assert(eq(int, ops->commit(st), TG_OK));
}

Test(store, committed_records_survive_a_reopen_and_rolled_back_ones_do_not)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, false);
    struct tg_spool_put b = put_of("b", "kb", 1, -1, false);
    struct tg_spool_put_result r;
    struct tg_spool_meta m;

    open_store(0);
    do_put(&a);
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->put(st, &b, &r), TG_OK));
    ops->rollback(st);
    ops->close(st);
    st = NULL;
    open_store(0);
    cr_expect(eq(int, ops->get(st, "a", &m, NULL), TG_OK));
    cr_expect(eq(int, ops->get(st, "b", &m, NULL), TG_ENOTFOUND));
}

Test(store, a_failed_fsync_fails_the_commit)
{
    struct tg_spool_put a = put_of("a", "ka", 1, -1, false);
    struct tg_spool_put_result r;

    open_store(0);
    setenv("TRACEGATE_TEST_FAIL_FSYNC_AT", "1", 1); /* NOLINT(concurrency-mt-unsafe) */
    tg_testhook_init();
    cr_assert(eq(int, ops->begin(st), TG_OK));
    cr_assert(eq(int, ops->put(st, &a, &r), TG_OK));
    cr_expect(eq(int, ops->commit(st), TG_EINTERNAL));
    ops->rollback(st);
    unsetenv("TRACEGATE_TEST_FAIL_FSYNC_AT"); /* NOLINT(concurrency-mt-unsafe) */
    tg_testhook_init();
}

Test(store, deleted_bodies_are_overwritten_on_disk)
{
    char body[3000];
    struct tg_spool_put a = put_of("a", "ka", 1, -1, false);
    sqlite3 *db = NULL;
    FILE *f;
    char *all;
    long len;

    memset(body, 'Q', sizeof(body));
    snprintf(body, 64, "PATIENT-SECRET-MARKER");
    a.request = (const uint8_t *)body;
    a.request_len = sizeof(body);
    open_store(0);
    do_put(&a);
    do_mark("a", TG_SPOOL_DELIVERED, 2000);
    ops->close(st); /* checkpoints the WAL into the file */
    st = NULL;
    cr_assert(eq(int, sqlite3_open(tmpdir_path("spool.db"), &db), SQLITE_OK));
    sqlite3_close(db);
    f = fopen(tmpdir_path("spool.db"), "rb");
    cr_assert(not(zero(ptr, f)));
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    all = malloc((size_t)len);
    cr_assert(eq(sz, fread(all, 1, (size_t)len, f), (size_t)len));
    fclose(f);
    cr_expect(zero(ptr, memmem(all, (size_t)len, "PATIENT-SECRET-MARKER", 21)),
              "secure_delete left the body on disk");
    free(all);
}
