/* The operator's spool commands (spool/cli.h). */
#include "spool/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway/conf.h"
#include "spool/meta.h"
#include "spool/spool.h"
#include "spool/store.h"

#define REASON_MAX 200

struct cli {
    const char *conf_file;
    const char *route;
    const char *reason;
    int state; /* -1: any */
    unsigned limit;
    bool all_dead;
    const char *cmd;
    const char *id;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tracegate spool list [--state S] [--route R] [--limit N] -c FILE\n"
               "       tracegate spool show ID -c FILE\n"
               "       tracegate spool replay (ID | --all-dead [--route R]) [--reason TEXT] "
               "-c FILE\n"
               "       tracegate spool purge ID --reason TEXT -c FILE\n"
               "\n"
               "  S: queued, delivering, delivered, rejected, dead or unknown\n"
               "  replay sends a dead or unknown record again (its age counts from now);\n"
               "  purge deletes a record for good. Metadata only: bodies are never shown.\n");
}

/* One JSON line on stderr per command: who did what to which record, and why. */
static void log_action(const struct cli *c, const char *id, int rc, unsigned n)
{
    char ts[40];
    /* The CLI runs alone, before any thread. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *user = getenv("SUDO_USER");
    json_t *o;
    char *text;

    tg_spool_time(tg_spool_now_ms(), ts, sizeof(ts));
    if (user == NULL) {
        user = getenv("LOGNAME"); /* NOLINT(concurrency-mt-unsafe): see above */
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s*, s:s*, s:i, s:s*, s:s, s:i}", "ts", ts, "level",
                  rc == TG_OK ? "info" : "warn", "event", "spool.cli", "action", c->cmd, "id", id,
                  "reason", c->reason, "uid", (int)getuid(), "user", user, "result",
                  rc == TG_OK          ? "ok"
                  : rc == TG_ENOTFOUND ? "not found"
                                       : "failed",
                  "records", (int)n);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text != NULL) {
        fprintf(stderr, "%s\n", text);
    }
    free(text);
    json_decref(o);
}

static int print_meta(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *none)
{
    json_t *o = tg_spool_meta_json(m, true);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    unsigned *n = arg;

    (void)none;
    if (text != NULL) {
        printf("%s\n", text);
        (*n)++;
    }
    free(text);
    json_decref(o);
    return TG_OK;
}

/* Collects ids of dead records for --all-dead. */
struct ids {
    char (*id)[TG_SPOOL_ID_LEN + 1];
    size_t n, cap;
};

static int collect(void *arg, const struct tg_spool_meta *m, struct tg_spool_blob *none)
{
    struct ids *ids = arg;

    (void)none;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap * 2 + 64;
        void *p = realloc(ids->id, cap * sizeof(*ids->id));
        if (p == NULL) {
            return TG_ENOMEM;
        }
        ids->id = p;
        ids->cap = cap;
    }
    memcpy(ids->id[ids->n++], m->id, TG_SPOOL_ID_LEN + 1);
    return TG_OK;
}

static int replay_all(const struct tg_store_ops *ops, struct tg_store *s, const struct cli *c,
                      unsigned *n)
{
    struct ids ids = {0};
    int64_t now = tg_spool_now_ms();
    int rc = ops->list(s, TG_SPOOL_DEAD, c->route, UINT32_MAX, collect, &ids);

    for (size_t i = 0; rc == TG_OK && i < ids.n; i++) {
        rc = ops->replay(s, ids.id[i], now);
        rc = rc != TG_OK ? rc
                         : ops->audit(s, now, "replay", ids.id[i],
                                      c->reason != NULL ? c->reason : "", (long)getuid());
        *n += rc == TG_OK;
    }
    free(ids.id);
    return rc;
}

/* The command, in one transaction for those that write. */
static int act(const struct tg_store_ops *ops, struct tg_store *s, const struct cli *c, unsigned *n)
{
    struct tg_spool_meta m;
    int64_t now = tg_spool_now_ms();
    const char *reason = c->reason != NULL ? c->reason : "";
    int rc;

    if (strcmp(c->cmd, "list") == 0) {
        return ops->list(s, c->state, c->route, c->limit, print_meta, n);
    }
    if (strcmp(c->cmd, "show") == 0) {
        rc = ops->get(s, c->id, &m, NULL);
        return rc == TG_OK ? print_meta(n, &m, NULL) : rc;
    }
    rc = ops->begin(s);
    if (rc == TG_OK && c->all_dead) {
        rc = replay_all(ops, s, c, n);
    } else if (rc == TG_OK) {
        rc =
            strcmp(c->cmd, "replay") == 0 ? ops->replay(s, c->id, now) : ops->remove(s, c->id, now);
        rc = rc != TG_OK ? rc : ops->audit(s, now, c->cmd, c->id, reason, (long)getuid());
        *n += rc == TG_OK;
    }
    rc = rc != TG_OK ? rc : ops->commit(s);
    if (rc != TG_OK) {
        ops->rollback(s);
    }
    return rc;
}

static int parse(int argc, char **argv, struct cli *c)
{
    static const struct option longs[] = {
        {"conf", required_argument, NULL, 'c'},   {"state", required_argument, NULL, 's'},
        {"route", required_argument, NULL, 'r'},  {"limit", required_argument, NULL, 'n'},
        {"reason", required_argument, NULL, 'R'}, {"all-dead", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    char *end = NULL;
    int o;

    c->state = -1;
    c->limit = 1000;
    optind = 1;
    /* The CLI runs alone, before any thread. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((o = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (o) {
        case 'c':
            c->conf_file = optarg;
            break;
        case 's':
            c->state = tg_spool_state_of(optarg);
            if (c->state < 0) {
                return 2;
            }
            break;
        case 'r':
            c->route = optarg;
            break;
        case 'n':
            errno = 0;
            c->limit = (unsigned)strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || c->limit == 0) {
                return 2;
            }
            break;
        case 'R':
            c->reason = optarg;
            break;
        case 'a':
            c->all_dead = true;
            break;
        default:
            return o == 'h' ? 1 : 2;
        }
    }
    c->cmd = optind < argc ? argv[optind++] : NULL;
    c->id = optind < argc ? argv[optind++] : NULL;
    return 0;
}

/* Whether the command line makes sense: a command, the conf, an id where one is needed, a
 * reason for a purge (it deletes for good), nothing left over. */
static bool well_formed(const struct cli *c, int argc)
{
    bool list = c->cmd != NULL && strcmp(c->cmd, "list") == 0;
    bool replay = c->cmd != NULL && strcmp(c->cmd, "replay") == 0;
    bool by_id =
        c->cmd != NULL && (strcmp(c->cmd, "show") == 0 || replay || strcmp(c->cmd, "purge") == 0);

    if (c->conf_file == NULL || optind != argc || (!list && !by_id)) {
        return false;
    }
    if (c->reason != NULL && strlen(c->reason) > REASON_MAX) {
        return false;
    }
    if (list) {
        return c->id == NULL && !c->all_dead;
    }
    if (replay && c->all_dead) {
        return c->id == NULL;
    }
    return c->id != NULL && strlen(c->id) == TG_SPOOL_ID_LEN && !c->all_dead &&
           (strcmp(c->cmd, "purge") != 0 || c->reason != NULL);
}

int tg_spool_cli(int argc, char **argv)
{
    struct cli c = {0};
    struct tg_conf *conf = NULL;
    struct tg_store *s = NULL;
    const struct tg_store_ops *ops = &tg_store_sqlite;
    char err[TG_CONF_ERR_MAX];
    unsigned n = 0;
    int rc = parse(argc, argv, &c);

    if (rc != 0 || c.cmd == NULL || !well_formed(&c, argc)) {
        usage(rc == 1 ? stdout : stderr);
        return rc == 1 ? 0 : 2;
    }
    if (tg_conf_load(c.conf_file, NULL, &conf, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (conf->spool == NULL) {
        fprintf(stderr, "%s: no \"spool\" block\n", c.conf_file);
        tg_conf_unref(conf);
        return 1;
    }
    bool reads = strcmp(c.cmd, "list") == 0 || strcmp(c.cmd, "show") == 0;
    struct tg_store_options o = {conf->spool->path, reads, conf->spool->sync_full, 0};
    if (ops->open(&o, &s, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tracegate spool: %s\n", err);
        tg_conf_unref(conf);
        return 1;
    }
    rc = act(ops, s, &c, &n);
    log_action(&c, c.all_dead ? "all dead" : c.id, rc, n);
    if (rc == TG_ENOTFOUND) {
        fprintf(stderr, "tracegate spool: %s: no such record%s\n", c.id,
                strcmp(c.cmd, "replay") == 0 ? " that is dead or unknown" : "");
    }
    ops->close(s);
    tg_conf_unref(conf);
    return rc == TG_OK ? 0 : 1;
}
