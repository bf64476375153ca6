/* Durable routes against the stub's ledger (a backend of record that stores once per
 * Idempotency-Key): the contract a client and a backend are promised. The backend's answer
 * within sync_wait_ms, else 202 after the spool's fsync; the first answer again, byte for byte,
 * for the same key and body; 409 while the first is in progress, 422 for another body, 400
 * without a key; 503 (never 202) when the spool cannot store; the status resource without a
 * field of the submission; delivery until delivered, rejected, dead or unknown; each patient's
 * order; a restart with a backlog. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/durable.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;
static char spool[64];

static void setup(void)
{
    durable_fixture_start(&fx, spool, sizeof(spool));
}

static void teardown(void)
{
    fixture_stop(&fx);
    spool_dir_remove(spool);
}

TestSuite(durable, .init = setup, .fini = teardown, .timeout = 90);

/* Starts the gateway on durable.json with the given overrides (NAME=VALUE, NULL-terminated). */
static void start(const char *const *overrides)
{
    durable_gateway_start(&fx, spool, overrides);
}

#define GW   (fx.gw.ports[0])
#define STUB (fx.stub.ports[0])

static const char *hdr(const struct http_resp *r, const char *name)
{
    static char buf[4][512];
    static int turn;
    char *b = buf[turn++ % 4];

    return http_header(r, name, b, 512);
}

/* The submission id of an answer (Submission-Id), copied into out (37 bytes). */
static void id_of(const struct http_resp *r, char *out)
{
    const char *id = hdr(r, "Submission-Id");

    cr_assert_not_null(id, "no Submission-Id: %s", r->headers);
    snprintf(out, 37, "%s", id);
}

static json_t *status_of(const char *id, long *code)
{
    char target[128];
    struct http_resp r;
    json_t *j;

    snprintf(target, sizeof(target), "/submissions/%s", id);
    cr_assert_eq(http_do(GW, "GET", target, NULL, NULL, 0, 0, &r), 0);
    *code = r.status;
    j = json_loads(r.body, 0, NULL);
    http_resp_free(&r);
    return j;
}

/* Polls the status resource until state is want (or 15 s passed); returns the last state. */
static char *wait_state(const char *id, const char *want)
{
    char *got = NULL;

    for (int i = 0; i < 150; i++) {
        long code = 0;
        json_t *s = status_of(id, &code);
        free(got);
        got = strdup(s != NULL ? json_string_value(json_object_get(s, "state")) : "?");
        json_decref(s);
        if (strcmp(got, want) == 0) {
            break;
        }
        usleep(100000);
    }
    return got;
}

Test(durable, delivered_in_time_gives_the_backends_answer)
{
    struct http_resp r;

    start(NULL);
    cr_assert_eq(submit(GW, "k-sync-1", "p1", "{\"answers\":[1]}", 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"message\":\"success\""), "%s", r.body);
    cr_expect_not_null(hdr(&r, "Submission-Id"));
    cr_expect_null(hdr(&r, "Idempotent-Replayed"));
    http_resp_free(&r);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_stored(l, "k-sync-1"), 1);
    json_decref(l);
}

Test(durable, the_same_key_and_body_get_the_first_answer_byte_for_byte)
{
    struct http_resp a, b;

    start(NULL);
    cr_assert_eq(submit(GW, "k-replay", "p1", "{\"answers\":[2]}", 0, &a), 0);
    cr_assert_eq(a.status, 201, "%s", a.body);
    cr_assert_eq(submit(GW, "k-replay", "p1", "{\"answers\":[2]}", 0, &b), 0);
    cr_expect_eq(b.status, a.status);
    cr_expect_eq(b.body_len, a.body_len);
    cr_expect(a.body_len == b.body_len && memcmp(a.body, b.body, a.body_len) == 0,
              "first %s, again %s", a.body, b.body);
    cr_expect_str_eq(hdr(&b, "Submission-Id"), hdr(&a, "Submission-Id"));
    cr_expect_str_eq(hdr(&b, "Content-Type"), hdr(&a, "Content-Type"));
    cr_expect_str_eq(hdr(&b, "Idempotent-Replayed"), "true");
    http_resp_free(&a);
    http_resp_free(&b);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_arrivals(l, "k-replay"), 1, "a replay never reaches the backend");
    json_decref(l);
}

Test(durable, another_body_under_the_same_key_is_422)
{
    struct http_resp r;

    start(NULL);
    cr_assert_eq(submit(GW, "k-mismatch", "p1", "{\"answers\":[3]}", 0, &r), 0);
    cr_expect_eq(r.status, 201);
    http_resp_free(&r);
    cr_assert_eq(submit(GW, "k-mismatch", "p1", "{\"answers\":[4]}", 0, &r), 0);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "idempotency key reused"), "%s", r.body);
    http_resp_free(&r);
}

Test(durable, a_missing_malformed_or_repeated_key_is_400)
{
    const char *two[] = {"Idempotency-Key: a", "Idempotency-Key: b", NULL};
    const char *bad[] = {"Idempotency-Key: \"has space\"", NULL};
    const char *empty[] = {"Idempotency-Key: \"\"", NULL};
    struct http_resp r;

    start(NULL);
    cr_assert_eq(submit(GW, NULL, "p1", "{}", 0, &r), 0);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "bad idempotency key"), "%s", r.body);
    http_resp_free(&r);
    const char *const *cases[] = {two, bad, empty};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(http_do(GW, "POST", "/submit", cases[i], "{}", 2, 0, &r), 0);
        cr_expect_eq(r.status, 400, "case %zu: %s", i, r.body);
        http_resp_free(&r);
    }
    json_t *l = ledger_get(STUB);
    cr_expect_eq(json_integer_value(json_object_get(l, "arrivals")), 0);
    json_decref(l);
}

Test(durable, a_bare_or_quoted_key_is_the_same_key_within_its_scope)
{
    const char *bare[] = {"Idempotency-Key: 9b2c-11", "Content-Type: application/json",
                          "X-Patient-Id: p1", NULL};
    struct http_resp r;

    start(NULL);
    cr_assert_eq(submit(GW, "9b2c-11", "p1", "{\"a\":1}", 0, &r), 0);
    cr_expect_eq(r.status, 201);
    http_resp_free(&r);
    cr_assert_eq(http_do(GW, "POST", "/submit", bare, "{\"a\":1}", 7, 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(hdr(&r, "Idempotent-Replayed"), "true", "the bare key is the quoted one");
    http_resp_free(&r);
    /* The key scope (X-Patient-Id here) is part of the key: another patient, another record. */
    cr_assert_eq(submit(GW, "9b2c-11", "p2", "{\"a\":1}", 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_null(hdr(&r, "Idempotent-Replayed"));
    http_resp_free(&r);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_arrivals(l, "9b2c-11"), 2);
    json_decref(l);
}

struct pair {
    int port;
    struct http_resp r;
};

static void *send_slow(void *arg)
{
    struct pair *p = arg;

    submit(p->port, "k-conflict", "p1", "{\"answers\":[5]}", 0, &p->r);
    return NULL;
}

Test(durable, the_same_key_while_the_first_waits_is_409)
{
    struct pair first = {0};
    struct http_resp r;
    pthread_t t;

    start(NULL);
    ledger_config(STUB, "hang_ms=1500");
    first.port = GW;
    cr_assert_eq(pthread_create(&t, NULL, send_slow, &first), 0);
    usleep(500000); /* the first is stored and its attempt hangs at the backend */
    cr_assert_eq(submit(GW, "k-conflict", "p1", "{\"answers\":[5]}", 0, &r), 0);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect_str_eq(hdr(&r, "Retry-After"), "1");
    http_resp_free(&r);
    pthread_join(t, NULL);
    cr_expect_eq(first.r.status, 201, "the first still gets the backend's answer: %s",
                 first.r.body);
    http_resp_free(&first.r);
    cr_assert_eq(submit(GW, "k-conflict", "p1", "{\"answers\":[5]}", 0, &r), 0);
    cr_expect_eq(r.status, 201, "after it was answered: the replay");
    cr_expect_str_eq(hdr(&r, "Idempotent-Replayed"), "true");
    http_resp_free(&r);
}

Test(durable, a_slow_backend_gets_202_with_location_then_delivers)
{
    const char *over[] = {"SYNC_WAIT_MS=300", NULL};
    struct http_resp r, again;
    char id[37], loc[128];

    start(over);
    ledger_config(STUB, "hang_ms=1500");
    cr_assert_eq(submit(GW, "k-slow", "p1", "{\"answers\":[6]}", 0, &r), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    id_of(&r, id);
    snprintf(loc, sizeof(loc), "/submissions/%s", id);
    cr_expect_str_eq(hdr(&r, "Location"), loc);
    cr_expect_not_null(hdr(&r, "Retry-After"));
    cr_expect_not_null(strstr(r.body, id), "%s", r.body);
    cr_expect_lt(r.total_ms, 1400, "the 202 must not wait for the backend");
    char *state = wait_state(id, "delivered");
    cr_expect_str_eq(state, "delivered");
    free(state);
    cr_assert_eq(submit(GW, "k-slow", "p1", "{\"answers\":[6]}", 0, &again), 0);
    cr_expect_eq(again.status, 202, "the first answer was the 202");
    cr_expect(again.body_len == r.body_len && memcmp(again.body, r.body, r.body_len) == 0);
    cr_expect_str_eq(hdr(&again, "Location"), loc);
    http_resp_free(&r);
    http_resp_free(&again);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_stored(l, "k-slow"), 1);
    json_decref(l);
}

Test(durable, backend_down_gives_only_202_then_everything_once)
{
    char key[32], ids[20][37];

    start(NULL);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 20; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-down-%d", i);
        cr_assert_eq(submit(GW, key, i % 2 ? "p1" : "p2", "{\"answers\":[7]}", 0, &r), 0);
        cr_expect_eq(r.status, 202, "%s: %s", key, r.body);
        id_of(&r, ids[i]);
        http_resp_free(&r);
    }
    ledger_config(STUB, "down=0");
    cr_assert(wait_ledger_stored(STUB, 20, 20000), "not all delivered");
    cr_assert(wait_drained(GW, 10000));
    json_t *l = ledger_get(STUB);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k-down-%d", i);
        cr_expect_eq(ledger_stored(l, key), 1, "%s", key);
    }
    json_decref(l);
    char *state = wait_state(ids[3], "delivered");
    cr_expect_str_eq(state, "delivered");
    free(state);
}

Test(durable, each_patients_submissions_arrive_in_acceptance_order)
{
    char key[32];

    start(NULL);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 30; i++) {
        struct http_resp r;
        char patient[8];
        snprintf(key, sizeof(key), "k-order-%02d", i);
        snprintf(patient, sizeof(patient), "p%d", i % 3);
        cr_assert_eq(submit(GW, key, patient, "{\"answers\":[8]}", 0, &r), 0);
        cr_expect_eq(r.status, 202);
        http_resp_free(&r);
    }
    /* Retries have spread out by now (full jitter): the backend comes back mid-backoff. */
    usleep(300000);
    ledger_config(STUB, "down=0");
    cr_assert(wait_ledger_stored(STUB, 30, 20000));
    json_t *l = ledger_get(STUB);
    for (int p = 0; p < 3; p++) {
        char patient[8];
        snprintf(patient, sizeof(patient), "p%d", p);
        json_t *order = json_object_get(json_object_get(l, "order"), patient);
        cr_assert_eq(json_array_size(order), 10, "%s", patient);
        for (size_t i = 0; i < 10; i++) {
            snprintf(key, sizeof(key), "k-order-%02zu", i * 3 + (size_t)p);
            cr_expect_str_eq(json_string_value(json_array_get(order, i)), key, "%s #%zu", patient,
                             i);
        }
    }
    json_decref(l);
}

Test(durable, store_then_reset_is_resent_and_stored_once)
{
    char key[32];
    int acked = 0;

    start(NULL);
    ledger_config(STUB, "commit_then_reset=50");
    for (int i = 0; i < 20; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-reset-%d", i);
        cr_assert_eq(submit(GW, key, NULL, "{\"answers\":[9]}", 0, &r), 0);
        cr_expect(r.status == 201 || r.status == 202, "%ld %s", r.status, r.body);
        acked += r.status == 201 || r.status == 202;
        http_resp_free(&r);
    }
    cr_expect_eq(acked, 20, "a durable route never answers 502 after accepting");
    cr_assert(wait_drained(GW, 20000));
    json_t *l = ledger_get(STUB);
    long arrivals = (long)json_integer_value(json_object_get(l, "arrivals"));
    cr_expect_gt(arrivals, 20, "resends did happen");
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k-reset-%d", i);
        cr_expect_eq(ledger_stored(l, key), 1, "%s", key);
    }
    json_decref(l);
}

Test(durable, a_refusal_passes_through_and_the_record_is_rejected)
{
    struct http_resp r;
    char id[37];
    long code;

    start(NULL);
    ledger_config(STUB, "refuse=422");
    cr_assert_eq(submit(GW, "k-refused", "p1", "{\"answers\":[10]}", 0, &r), 0);
    cr_expect_eq(r.status, 422, "the backend's own 4xx: %s", r.body);
    cr_expect_not_null(strstr(r.body, "refused"), "%s", r.body);
    id_of(&r, id);
    http_resp_free(&r);
    json_t *s = status_of(id, &code);
    cr_expect_eq(code, 200);
    cr_expect_str_eq(json_string_value(json_object_get(s, "state")), "rejected");
    cr_expect_eq(json_integer_value(json_object_get(s, "upstream_status")), 422);
    json_decref(s);
    usleep(500000);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_arrivals(l, "k-refused"), 1, "a refusal is not tried again");
    json_decref(l);
}

Test(durable, the_status_resource_shows_metadata_and_no_field_of_the_submission)
{
    static const char *const allowed[] = {
        "submission_id", "route",           "state",        "attempts",        "created_at",
        "updated_at",    "next_attempt_at", "delivered_at", "upstream_status", "trace_id",
    };
    struct http_resp r;
    char id[37];
    long code;
    const char *key;
    json_t *v;

    start(NULL);
    cr_assert_eq(submit(GW, "k-status", "p-secret-77", "{\"diagnosis\":\"SECRET-F32.1\"}", 0, &r),
                 0);
    cr_assert_eq(r.status, 201);
    id_of(&r, id);
    http_resp_free(&r);
    json_t *s = status_of(id, &code);
    cr_assert_eq(code, 200);
    cr_expect_str_eq(json_string_value(json_object_get(s, "state")), "delivered");
    cr_expect_eq(json_integer_value(json_object_get(s, "attempts")), 1);
    cr_expect_eq(json_integer_value(json_object_get(s, "upstream_status")), 201);
    json_object_foreach(s, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
            ok |= strcmp(key, allowed[i]) == 0;
        }
        cr_expect(ok, "unexpected field %s", key);
    }
    char *text = json_dumps(s, 0);
    cr_expect_null(strstr(text, "SECRET"), "%s", text);
    cr_expect_null(strstr(text, "p-secret-77"), "%s", text);
    free(text);
    json_decref(s);
    char *log = proc_log(&fx.gw);
    cr_expect_null(strstr(log, "SECRET-F32.1"), "a body reached the log");
    free(log);
    s = status_of("00000000-0000-4000-8000-000000000000", &code);
    cr_expect_eq(code, 404);
    json_decref(s);
    s = status_of("not-an-id", &code);
    cr_expect_eq(code, 404);
    json_decref(s);
}

Test(durable, without_dedup_an_ambiguous_attempt_is_unknown_and_never_resent)
{
    const char *over[] = {"BACKEND_DEDUP=false", NULL};
    char key[32], ids[10][37];

    start(over);
    ledger_config(STUB, "commit_then_reset=100");
    for (int i = 0; i < 10; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-nodedup-%d", i);
        cr_assert_eq(submit(GW, key, NULL, "{\"answers\":[11]}", 0, &r), 0);
        cr_expect_eq(r.status, 202, "%s", r.body);
        id_of(&r, ids[i]);
        http_resp_free(&r);
    }
    usleep(1500000); /* several backoffs: a resend would have come by now */
    json_t *l = ledger_get(STUB);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k-nodedup-%d", i);
        cr_expect_eq(ledger_arrivals(l, key), 1, "%s was sent again", key);
        cr_expect_eq(ledger_stored(l, key), 1);
        char *state = wait_state(ids[i], "unknown");
        cr_expect_str_eq(state, "unknown");
        free(state);
    }
    json_decref(l);
    cr_expect_eq(metric(GW, "tracegate_delivery_attempts_total{outcome=\"unknown\"}"), 10);
}

/* The negative control of the test above: a backend that cannot deduplicate, behind a route
 * that says it can. The harness must see the duplicates, or it could not see any. */
Test(durable, negative_control_a_backend_without_dedup_is_caught_storing_twice)
{
    char key[32];
    int twice = 0;

    start(NULL);
    ledger_config(STUB, "dedup=0&commit_then_reset=100");
    for (int i = 0; i < 5; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-dup-%d", i);
        cr_assert_eq(submit(GW, key, NULL, "{\"answers\":[12]}", 0, &r), 0);
        http_resp_free(&r);
    }
    usleep(800000);
    ledger_config(STUB, "commit_then_reset=0");
    cr_assert(wait_drained(GW, 20000));
    json_t *l = ledger_get(STUB);
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k-dup-%d", i);
        twice += ledger_stored(l, key) > 1;
    }
    json_decref(l);
    cr_expect_eq(twice, 5, "every key must show up stored more than once");
}

Test(durable, past_max_age_a_record_is_dead_and_an_operator_replay_delivers_it_once)
{
    const char *over[] = {"MAX_AGE_S=1", NULL};
    char id[37], conf_arg[160], cmd[512];
    struct http_resp r;

    start(over);
    ledger_config(STUB, "down=1");
    cr_assert_eq(submit(GW, "k-dead", "p1", "{\"answers\":[13]}", 0, &r), 0);
    cr_expect_eq(r.status, 202);
    id_of(&r, id);
    http_resp_free(&r);
    char *state = wait_state(id, "dead");
    cr_expect_str_eq(state, "dead");
    free(state);
    const char *dead_log[] = {"\"event\":\"durable.dead\"", id, NULL};
    cr_expect_eq(proc_log_wait(&fx.gw, dead_log, 1, 5000), 1);
    ledger_config(STUB, "down=0");
    usleep(300000);
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_stored(l, "k-dead"), 0, "dead is not delivered by itself");
    json_decref(l);
    snprintf(conf_arg, sizeof(conf_arg), "%s", fx.conf_path);
    snprintf(cmd, sizeof(cmd), "'%s' spool replay %s --reason 'backend fixed' -c '%s' 2>&1",
             TG_BINARY, id, conf_arg);
    FILE *p = popen(cmd, "r");
    char out[1024] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0, "%s", out);
    cr_expect_not_null(strstr(out, "\"action\":\"replay\""), "%s", out);
    state = wait_state(id, "delivered");
    cr_expect_str_eq(state, "delivered");
    free(state);
    l = ledger_get(STUB);
    cr_expect_eq(ledger_stored(l, "k-dead"), 1);
    json_decref(l);
}

Test(durable, without_require_key_a_key_is_made_and_echoed)
{
    const char *over[] = {"REQUIRE_KEY=false", NULL};
    struct http_resp r;

    start(over);
    cr_assert_eq(submit(GW, NULL, "p1", "{\"answers\":[14]}", 0, &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    const char *k = hdr(&r, "Idempotency-Key");
    cr_assert_not_null(k);
    cr_expect_eq(strlen(k), 38, "a quoted UUID: %s", k);
    http_resp_free(&r);
}

Test(durable, mode_always_answers_202_at_once_and_delivers_in_the_background)
{
    const char *over[] = {"MODE=always", NULL};
    struct http_resp r;
    char id[37];

    start(over);
    cr_assert_eq(submit(GW, "k-always", "p1", "{\"answers\":[15]}", 0, &r), 0);
    cr_expect_eq(r.status, 202, "%s", r.body);
    id_of(&r, id);
    http_resp_free(&r);
    char *state = wait_state(id, "delivered");
    cr_expect_str_eq(state, "delivered");
    free(state);
}

Test(durable, a_full_quota_gives_503_and_recovers_without_a_restart)
{
    const char *over[] = {"SPOOL_MAX_BYTES=262144", NULL};
    char body[8192], key[32];
    int accepted = 0, refused = 0;
    struct http_resp r;

    /* {"answers":"xxx...x"}: a big body, valid JSON for the ledger */
    snprintf(body, sizeof(body), "{\"answers\":\"%0*d\"}", (int)sizeof(body) - 20, 0);
    start(over);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 200 && refused == 0; i++) {
        snprintf(key, sizeof(key), "k-full-%d", i);
        cr_assert_eq(submit(GW, key, NULL, body, 0, &r), 0);
        cr_assert(r.status == 202 || r.status == 503, "%ld: %s", r.status, r.body);
        accepted += r.status == 202;
        if (r.status == 503) {
            refused++;
            cr_expect_not_null(hdr(&r, "Retry-After"));
        }
        http_resp_free(&r);
    }
    cr_assert_eq(refused, 1, "the quota never refused (%d accepted)", accepted);
    cr_assert_eq(http_do(GW, "GET", "/readyz", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 503, "%s", r.body);
    http_resp_free(&r);
    cr_assert_eq(submit(GW, "k-full-again", NULL, body, 0, &r), 0);
    cr_expect_eq(r.status, 503, "still full: never 202");
    http_resp_free(&r);
    ledger_config(STUB, "down=0"); /* deliveries drop the bodies: room again */
    cr_assert(wait_ledger_stored(STUB, accepted, 30000));
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        cr_assert_eq(submit(GW, "k-full-after", NULL, body, 0, &r), 0);
        back = r.status == 201;
        http_resp_free(&r);
        usleep(100000);
    }
    cr_expect(back, "still refusing after the backlog was delivered");
    cr_assert_eq(http_do(GW, "GET", "/readyz", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_resp_free(&r);
}

Test(durable, a_restart_with_a_backlog_delivers_every_record_once)
{
    char key[32];

    start(NULL);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 15; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-restart-%d", i);
        cr_assert_eq(submit(GW, key, "p1", "{\"answers\":[16]}", 0, &r), 0);
        cr_expect_eq(r.status, 202);
        http_resp_free(&r);
    }
    cr_expect_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0, "%s", fx.gw.log_path);
    ledger_config(STUB, "down=0");
    cr_assert_eq(gateway_start(&fx.gw, fx.conf_path, NULL), 0, "%s", fx.gw.log_path);
    cr_assert(wait_ledger_stored(STUB, 15, 20000));
    cr_assert(wait_drained(GW, 10000));
    json_t *l = ledger_get(STUB);
    for (int i = 0; i < 15; i++) {
        snprintf(key, sizeof(key), "k-restart-%d", i);
        cr_expect_eq(ledger_stored(l, key), 1, "%s", key);
    }
    cr_expect_eq(json_integer_value(json_object_get(l, "stored")), 15);
    json_decref(l);
}

Test(durable, metrics_count_acceptance_attempts_and_idempotency)
{
    struct http_resp r;

    start(NULL);
    cr_assert_eq(submit(GW, "k-m", "p1", "{\"answers\":[17]}", 0, &r), 0);
    http_resp_free(&r);
    cr_assert_eq(submit(GW, "k-m", "p1", "{\"answers\":[17]}", 0, &r), 0);
    http_resp_free(&r);
    cr_assert_eq(submit(GW, "k-m", "p1", "{\"answers\":[18]}", 0, &r), 0);
    http_resp_free(&r);
    cr_expect_eq(metric(GW, "tracegate_durable_accepted_total"), 1);
    cr_expect_eq(metric(GW, "tracegate_idempotency_total{result=\"replay\"}"), 1);
    cr_expect_eq(metric(GW, "tracegate_idempotency_total{result=\"mismatch\"}"), 1);
    cr_expect_eq(metric(GW, "tracegate_delivery_attempts_total{outcome=\"delivered\"}"), 1);
    cr_expect_gt(metric(GW, "tracegate_spool_fsync_seconds_count"), 0);
    cr_expect_eq(metric(GW, "tracegate_spool_health{state=\"ok\"}"), 1);
}

/* Rotation: what the old key sealed is still delivered under the new one; a spool whose keys
 * are all gone, or a key file others may read, keeps the gateway from starting. */
static void key_file(const char *path, const char *hex, mode_t mode)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s", path);
    fprintf(f, "%s\n", hex);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

static int start_keys(const char *key, const char *olds)
{
    const struct conf_var vars[] = {
        {"SPOOL_DIR", spool}, {"KEY_FILE", key}, {"OLD_KEY_FILES", olds}, {"STUB_PORT_0", NULL}};
    char port[16];
    struct conf_var v[4];

    snprintf(port, sizeof(port), "%d", STUB);
    memcpy(v, vars, sizeof(v));
    v[3].value = port;
    if (fx.conf_path[0] != '\0') {
        conf_template_rewrite(fx.conf_path, "durable_keys.json", v, 4);
    } else {
        conf_template_write(fx.conf_path, sizeof(fx.conf_path), "durable_keys.json", v, 4);
    }
    return gateway_start(&fx.gw, fx.conf_path, NULL);
}

Test(durable, a_rotated_key_still_opens_what_it_sealed_and_loose_or_missing_keys_refuse)
{
    char a[128], b[128], olds[160];
    struct http_resp r;

    snprintf(a, sizeof(a), "%s/a.key", spool);
    snprintf(b, sizeof(b), "%s/b.key", spool);
    key_file(a, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0600);
    key_file(b, "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 0600);
    cr_assert_eq(start_keys(a, ""), 0, "%s", fx.gw.log_path);
    ledger_config(STUB, "down=1");
    cr_assert_eq(submit(GW, "k-rot", "p1", "{\"answers\":[19]}", 0, &r), 0);
    cr_expect_eq(r.status, 202);
    http_resp_free(&r);
    cr_assert_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0);
    /* b seals from now on, a only opens */
    snprintf(olds, sizeof(olds), "\"%s\"", a);
    cr_assert_eq(start_keys(b, olds), 0, "%s", fx.gw.log_path);
    ledger_config(STUB, "down=0");
    cr_assert(wait_ledger_stored(STUB, 1, 15000), "sealed under the old key, never delivered");
    cr_assert_eq(submit(GW, "k-rot-2", "p1", "{\"answers\":[20]}", 0, &r), 0);
    cr_expect_eq(r.status, 202);
    http_resp_free(&r);
    cr_assert(wait_ledger_stored(STUB, 2, 15000));
    cr_assert_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0);
    /* a retired: the spool's index key was resealed under b, so b alone opens the spool */
    cr_assert_eq(start_keys(b, ""), 0, "%s", fx.gw.log_path);
    cr_assert_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0);
    /* a key file others may read keeps the gateway from starting */
    cr_assert_eq(chmod(b, 0644), 0);
    cr_expect_neq(start_keys(b, ""), 0, "started with a key others may read");
    const char *mode[] = {"chmod 600", NULL};
    cr_expect_geq(proc_log_count(&fx.gw, mode), 1, "%s", fx.gw.log_path);
    /* and a key that never sealed this spool is refused */
    cr_assert_eq(chmod(b, 0600), 0);
    cr_expect_neq(start_keys(a, ""), 0, "started with a key that never sealed this spool");
    const char *wrong[] = {"none of the key files opens this spool", NULL};
    cr_expect_geq(proc_log_count(&fx.gw, wrong), 1, "%s", fx.gw.log_path);
    cr_assert_eq(start_keys(b, ""), 0, "%s", fx.gw.log_path); /* the fixture stops this one */
}

struct loader {
    int port;
    int id;
    int n;
    int status[40];
};

static void *load_while_down(void *arg)
{
    struct loader *l = arg;
    char key[32], patient[16];

    snprintf(patient, sizeof(patient), "load-p%d", l->id);
    for (int i = 0; i < l->n; i++) {
        struct http_resp r;
        snprintf(key, sizeof(key), "k-load-%d-%02d", l->id, i);
        l->status[i] =
            submit(l->port, key, patient, "{\"answers\":[21]}", 0, &r) == 0 ? (int)r.status : -1;
        http_resp_free(&r);
    }
    return NULL;
}

Test(durable, backend_down_under_load_answers_only_202_then_delivers_once_in_order)
{
    struct loader l[8];
    pthread_t t[8];
    char key[32];

    start(NULL);
    ledger_config(STUB, "down=1");
    for (int i = 0; i < 8; i++) {
        l[i] = (struct loader){.port = GW, .id = i, .n = 40};
        cr_assert_eq(pthread_create(&t[i], NULL, load_while_down, &l[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
    }
    for (int i = 0; i < 8; i++) {
        for (int k = 0; k < l[i].n; k++) {
            cr_expect_eq(l[i].status[k], 202, "client %d #%d", i, k);
        }
    }
    ledger_config(STUB, "down=0");
    cr_assert(wait_ledger_stored(STUB, 320, 60000));
    cr_assert(wait_drained(GW, 20000));
    json_t *led = ledger_get(STUB);
    cr_expect_eq(json_integer_value(json_object_get(led, "stored")), 320);
    for (int i = 0; i < 8; i++) {
        char patient[16];
        snprintf(patient, sizeof(patient), "load-p%d", i);
        json_t *order = json_object_get(json_object_get(led, "order"), patient);
        cr_expect_eq(json_array_size(order), 40, "%s", patient);
        for (int k = 0; k < 40; k++) {
            snprintf(key, sizeof(key), "k-load-%d-%02d", i, k);
            cr_expect_str_eq(json_string_value(json_array_get(order, (size_t)k)), key);
            cr_expect_eq(ledger_stored(led, key), 1, "%s", key);
        }
    }
    json_decref(led);
}
