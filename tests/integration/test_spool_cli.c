/* The operator's commands on a spool (tracegate spool list|show|replay|purge): metadata only,
 * never a body; each action logged on stderr and audited in the spool; replay sends a dead
 * record again; purge needs a reason. Run beside a gateway that holds the same file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/durable.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;
static char spool[64];

static void setup(void)
{
    const char *over[] = {"MAX_AGE_S=1", NULL};

    durable_fixture_start(&fx, spool, sizeof(spool));
    durable_gateway_start(&fx, spool, over);
}

static void teardown(void)
{
    fixture_stop(&fx);
    spool_dir_remove(spool);
}

TestSuite(spool_cli, .init = setup, .fini = teardown, .timeout = 60);

#define GW   (fx.gw.ports[0])
#define STUB (fx.stub.ports[0])

/* Runs `tracegate spool ARGS -c CONF`; stdout into out, stderr into err; the exit status. */
static int cli(const char *args, char *out, size_t out_cap, char *err, size_t err_cap)
{
    char cmd[1024], err_path[64];
    FILE *p;
    size_t n;
    int status;

    snprintf(err_path, sizeof(err_path), "/tmp/tg-cli-err-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "'%s' spool %s -c '%s' 2>'%s'", TG_BINARY, args, fx.conf_path,
             err_path);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    n = fread(out, 1, out_cap - 1, p);
    out[n] = '\0';
    status = pclose(p);
    p = fopen(err_path, "r");
    n = p != NULL ? fread(err, 1, err_cap - 1, p) : 0;
    err[n] = '\0';
    if (p != NULL) {
        fclose(p);
    }
    unlink(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Submits one record and returns its id (into id, 37 bytes). */
static void one(const char *key, const char *body, char *id)
{
    struct http_resp r;
    char buf[64];

    cr_assert_eq(submit(GW, key, "p1", body, 0, &r), 0);
    cr_assert(r.status == 201 || r.status == 202, "%ld %s", r.status, r.body);
    snprintf(id, 37, "%s", http_header(&r, "Submission-Id", buf, sizeof(buf)));
    http_resp_free(&r);
}

Test(spool_cli, list_and_show_print_metadata_and_never_a_body)
{
    char out[16384], err[4096], id[37], args[128];

    one("k-cli-1", "{\"diagnosis\":\"CLI-SECRET\"}", id);
    cr_expect_eq(cli("list", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
    cr_expect_not_null(strstr(out, id), "%s", out);
    cr_expect_not_null(strstr(out, "\"state\":\"delivered\""), "%s", out);
    cr_expect_not_null(strstr(out, "\"key\":\"k-cli-1\""), "%s", out);
    cr_expect_null(strstr(out, "CLI-SECRET"), "%s", out);
    cr_expect_not_null(strstr(err, "\"event\":\"spool.cli\""), "%s", err);
    cr_expect_not_null(strstr(err, "\"action\":\"list\""), "%s", err);
    cr_expect_eq(cli("list --state dead", out, sizeof(out), err, sizeof(err)), 0);
    cr_expect_eq(strlen(out), 0, "no dead record: %s", out);
    snprintf(args, sizeof(args), "show %s", id);
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "submission_id")), id);
    cr_expect_eq(json_integer_value(json_object_get(j, "first_answer")), 201);
    json_decref(j);
    cr_expect_eq(
        cli("show 00000000-0000-4000-8000-000000000000", out, sizeof(out), err, sizeof(err)), 1);
}

Test(spool_cli, replay_sends_a_dead_record_once_and_purge_needs_a_reason)
{
    char out[16384], err[4096], dead[37], done[37], args[160];

    ledger_config(STUB, "down=1");
    one("k-cli-dead", "{\"a\":1}", dead);
    for (int i = 0; i < 100; i++) { /* max_age_s is 1 */
        cli("list --state dead", out, sizeof(out), err, sizeof(err));
        if (strstr(out, dead) != NULL) {
            break;
        }
        usleep(100000);
    }
    cr_assert_not_null(strstr(out, dead), "never dead: %s", out);
    ledger_config(STUB, "down=0");
    one("k-cli-done", "{\"a\":2}", done);
    snprintf(args, sizeof(args), "replay %s", done);
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 1, "a delivered record: %s", err);
    snprintf(args, sizeof(args), "replay --all-dead --reason 'backend fixed'");
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
    cr_expect_not_null(strstr(err, "\"records\":1"), "%s", err);
    cr_expect_not_null(strstr(err, "\"reason\":\"backend fixed\""), "%s", err);
    cr_assert(wait_ledger_stored(STUB, 2, 15000));
    json_t *l = ledger_get(STUB);
    cr_expect_eq(ledger_stored(l, "k-cli-dead"), 1);
    json_decref(l);
    snprintf(args, sizeof(args), "purge %s", done);
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 2, "purge without --reason");
    snprintf(args, sizeof(args), "purge %s --reason 'asked by the data protection officer'", done);
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
    snprintf(args, sizeof(args), "show %s", done);
    cr_expect_eq(cli(args, out, sizeof(out), err, sizeof(err)), 1, "purged: %s", out);
    /* Every action that wrote left its audit row. */
    char db[128];
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    snprintf(db, sizeof(db), "%s/spool.db", spool);
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(
        sqlite3_prepare_v2(h, "SELECT action, id, detail FROM audit ORDER BY at_ms", -1, &st, NULL),
        SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "replay");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 1), dead);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "purge");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 2),
                     "asked by the data protection officer");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

Test(spool_cli, usage_errors_are_2)
{
    char out[4096], err[4096];

    cr_expect_eq(cli("frobnicate", out, sizeof(out), err, sizeof(err)), 2);
    cr_expect_eq(cli("show", out, sizeof(out), err, sizeof(err)), 2, "show needs an id");
    cr_expect_eq(cli("list --state later", out, sizeof(out), err, sizeof(err)), 2);
    cr_expect_eq(cli("replay --all-dead 8e7f4145-714e-4b6b-a36c-2220116ee6bc", out, sizeof(out),
                     err, sizeof(err)),
                 2);
}
