#include "tests/support/soak.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/clock.h"
#include "tests/support/durable.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

#define CLIENTS_MAX 32
#define KEYS_MAX    4096
#define FINISH_US   60000000u /* a client gives up on a key after a minute of retries */
#define PATIENTS    8         /* each client submits for this many patients, in turn */

struct client {
    struct soak *s;
    int id;
    int started;
    bool acked[KEYS_MAX];
    int submissions;
};

struct soak {
    const struct soak_opts *o;
    struct fixture *fx;
    atomic_int port;
    atomic_bool done; /* no new keys */
    struct client clients[CLIENTS_MAX];
    unsigned seed;
};

static void key_name(char *out, size_t cap, int client, int k)
{
    snprintf(out, cap, "soak-c%02d-k%05d", client, k);
}

/* Key k of a client is for patient k % PATIENTS of that client: a device used by a few
 * patients, each one's submissions in order. */
static void patient_name(char *out, size_t cap, int client, int k)
{
    snprintf(out, cap, "p%d-%d", client, k % PATIENTS);
}

/* Submits key until it is acknowledged (or the run is over and a minute passed). */
static bool submit_until_acked(struct client *c, const char *key, const char *patient)
{
    uint64_t give_up = 0;

    for (;;) {
        struct http_resp r;
        int rc = submit(atomic_load(&c->s->port), key, patient, "{\"answers\":[1,2,3]}", 5000, &r);
        long st = r.status;
        http_resp_free(&r);
        c->submissions++;
        if (rc == 0 && ((st >= 200 && st < 300))) {
            return true;
        }
        /* A refusal other than "in progress" or "cannot store now" is a bug here. */
        cr_assert(rc != 0 || st == 409 || st == 503, "key %s: unexpected %ld", key, st);
        if (atomic_load(&c->s->done)) {
            give_up = give_up == 0 ? now_us() + FINISH_US : give_up;
            if (now_us() >= give_up) {
                return false;
            }
        }
        usleep(20000);
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    char key[64], patient[16];

    for (int k = 0; k < c->s->o->keys && k < KEYS_MAX && !atomic_load(&c->s->done); k++) {
        key_name(key, sizeof(key), c->id, k);
        patient_name(patient, sizeof(patient), c->id, k);
        c->started = k + 1;
        c->acked[k] = submit_until_acked(c, key, patient);
    }
    return NULL;
}

/* A start that did not listen in time: where each of its threads waits, on stderr. */
static void where_stuck(pid_t pid)
{
    char cmd[256];

    if (pid <= 0) {
        fprintf(stderr, "soak: the gateway exited before listening\n");
        return;
    }
    snprintf(cmd, sizeof(cmd),
             "for t in /proc/%d/task/*; do echo \"$t $(cat $t/comm) $(cat $t/wchan)\"; "
             "cat $t/stack 2>/dev/null | head -5; done >&2",
             (int)pid);
    FILE *p = popen(cmd, "r");
    if (p != NULL) {
        pclose(p);
    }
}

/* (Re)starts the gateway: the test build with the crash point at a random pass, or the gateway. */
static void restart(struct soak *s, bool hooks)
{
    char crash[96];
    const char *env[3] = {NULL};
    size_t n = 0;
    int rc;

    if (hooks && s->o->crash_point != NULL) {
        snprintf(crash, sizeof(crash), "TRACEGATE_TEST_CRASH_AT=%s:%d", s->o->crash_point,
                 1 + (int)(rand_r(&s->seed) % 3));
        env[n++] = crash;
    }
    if (hooks && s->o->ack_before_commit) {
        env[n++] = "TRACEGATE_TEST_ACK_BEFORE_COMMIT=1";
    }
    unlink(s->fx->gw.log_path); /* only the last incarnation's log is kept */
    rc = hooks ? gateway_start_hooks(&s->fx->gw, s->fx->conf_path, env)
               : gateway_start(&s->fx->gw, s->fx->conf_path, NULL);
    if (rc != 0) {
        where_stuck(s->fx->gw.pid);
    }
    cr_assert_eq(rc, 0, "gateway did not restart: %s", s->fx->gw.log_path);
    atomic_store(&s->port, s->fx->gw.ports[0]);
}

/* SIGKILL at random moments. */
static int kill_loop(struct soak *s)
{
    uint64_t end = now_us() + (uint64_t)s->o->max_s * 1000000u;
    int kills = 0;

    while (kills < s->o->kills && now_us() < end) {
        usleep(150000 + (rand_r(&s->seed) % 450000));
        proc_stop(&s->fx->gw, SIGKILL, 5000);
        kills++;
        restart(s, false);
    }
    return kills;
}

/* The test build dies at its crash point; each death is restarted with another pass. */
static int crash_loop(struct soak *s)
{
    uint64_t end = now_us() + (uint64_t)s->o->max_s * 1000000u;
    int hits = 0;

    while (hits < s->o->crash_hits && now_us() < end) {
        int st = proc_wait(&s->fx->gw, 200);
        if (st == -1) {
            continue;
        }
        cr_assert_eq(st, 128 + SIGKILL, "the test build exited %d: %s", st, s->fx->gw.log_path);
        hits++;
        restart(s, hits < s->o->crash_hits);
    }
    return hits;
}

/* Reads the ledger into r against what the clients were told. */
static void judge(struct soak *s, const json_t *l, struct soak_result *r)
{
    char key[64], patient[16];

    r->arrivals = (long)json_integer_value(json_object_get(l, "arrivals"));
    for (int c = 0; c < s->o->clients; c++) {
        const struct client *cl = &s->clients[c];
        size_t pos[PATIENTS] = {0};
        r->submissions += cl->submissions;
        r->keys += cl->started;
        for (int k = 0; k < cl->started; k++) {
            key_name(key, sizeof(key), c, k);
            patient_name(patient, sizeof(patient), c, k);
            int stored = ledger_stored(l, key);
            r->acked += cl->acked[k];
            r->lost += cl->acked[k] && stored == 0;
            r->twice += stored > 1;
            r->unacked_stored += !cl->acked[k] && stored == 1;
            if (stored > 0) {
                /* the patient's stores, in the order its keys were acknowledged */
                const json_t *order = json_object_get(json_object_get(l, "order"), patient);
                const char *at = json_string_value(json_array_get(order, pos[k % PATIENTS]++));
                r->out_of_order += at == NULL || strcmp(at, key) != 0;
            }
        }
    }
}

/* What is still open in the spool, on stderr (the operator's CLI): why a drain did not end. */
static void show_open(const struct fixture *fx)
{
    static const char *const states[] = {"queued", "delivering", "dead", "unknown"};
    char cmd[512];

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        snprintf(cmd, sizeof(cmd), "'%s' spool list --state %s --limit 20 -c '%s' >&2", TG_BINARY,
                 states[i], fx->conf_path);
        FILE *p = popen(cmd, "r");
        if (p != NULL) {
            pclose(p);
        }
    }
}

void soak_run(struct fixture *fx, const struct soak_opts *o, struct soak_result *r)
{
    struct soak *s = calloc(1, sizeof(*s));
    pthread_t t[CLIENTS_MAX];

    cr_assert_not_null(s);
    cr_assert_leq(o->clients, CLIENTS_MAX);
    memset(r, 0, sizeof(*r));
    s->o = o;
    s->fx = fx;
    s->seed = (unsigned)now_us();
    proc_stop(&fx->gw, SIGTERM, 10000);
    restart(s, o->crash_point != NULL || o->ack_before_commit);
    for (int i = 0; i < o->clients; i++) {
        s->clients[i] = (struct client){.s = s, .id = i};
        cr_assert_eq(pthread_create(&t[i], NULL, client_main, &s->clients[i]), 0);
    }
    r->kills = o->crash_point != NULL ? crash_loop(s) : kill_loop(s);
    if (o->crash_point != NULL && fx->gw.pid > 0 && r->kills < o->crash_hits) {
        proc_stop(&fx->gw, SIGKILL, 5000); /* out of time: the test build goes anyway */
        restart(s, false);
    }
    atomic_store(&s->done, true);
    for (int i = 0; i < o->clients; i++) {
        pthread_join(t[i], NULL);
    }
    /* The last gateway drains what is left. */
    if (!wait_drained(fx->gw.ports[0], o->max_s > 120 ? 300000 : 60000)) {
        show_open(fx);
        cr_assert_fail("the spool did not drain: %s", fx->gw.log_path);
    }
    json_t *l = ledger_get(fx->stub.ports[0]);
    cr_assert_not_null(l);
    judge(s, l, r);
    json_decref(l);
    fprintf(stderr,
            "soak %s: %d kills, %d keys, %d submissions, %d acknowledged, %d acknowledged but "
            "lost, %d stored twice, %d unacknowledged but stored, %d out of order, %ld "
            "arrivals\n",
            o->crash_point != NULL ? o->crash_point : "kill -9", r->kills, r->keys, r->submissions,
            r->acked, r->lost, r->twice, r->unacked_stored, r->out_of_order, r->arrivals);
    free(s);
}
