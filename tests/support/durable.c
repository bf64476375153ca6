#include "tests/support/durable.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"

void spool_dir_make(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/tg-spool-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void spool_dir_remove(const char *dir)
{
    if (dir[0] != '\0') {
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int submit(int port, const char *key, const char *patient, const char *body, long timeout_ms,
           struct http_resp *out)
{
    char k[320], p[160];
    const char *h[4] = {"Content-Type: application/json"};
    size_t n = 1;

    if (key != NULL) {
        snprintf(k, sizeof(k), "Idempotency-Key: \"%s\"", key);
        h[n++] = k;
    }
    if (patient != NULL) {
        snprintf(p, sizeof(p), "X-Patient-Id: %s", patient);
        h[n++] = p;
    }
    h[n] = NULL;
    return http_do(port, "POST", "/submit", h, body, strlen(body), timeout_ms, out);
}

json_t *ledger_get(int stub_port)
{
    struct http_resp r;
    json_t *j = NULL;

    if (http_do(stub_port, "GET", "/_stub/ledger", NULL, NULL, 0, 10000, &r) == 0 &&
        r.status == 200) {
        j = json_loads(r.body, 0, NULL);
    }
    http_resp_free(&r);
    return j;
}

void ledger_config(int stub_port, const char *query)
{
    char target[256];
    struct http_resp r;

    snprintf(target, sizeof(target), "/_stub/ledger/config?%s", query);
    cr_assert_eq(http_do(stub_port, "POST", target, NULL, "", 0, 5000, &r), 0);
    cr_assert_eq(r.status, 200, "ledger config %s: %s", query, r.body);
    http_resp_free(&r);
}

static int key_field(const json_t *ledger, const char *key, const char *field)
{
    const json_t *e = json_object_get(json_object_get(ledger, "keys"), key);

    return e != NULL ? (int)json_integer_value(json_object_get(e, field)) : 0;
}

int ledger_stored(const json_t *ledger, const char *key)
{
    return key_field(ledger, key, "stored");
}

int ledger_arrivals(const json_t *ledger, const char *key)
{
    return key_field(ledger, key, "arrivals");
}

double metric(int gw_port, const char *series)
{
    struct http_resp r;
    double v = -1;

    if (http_do(gw_port, "GET", "/metrics", NULL, NULL, 0, 5000, &r) == 0 && r.status == 200) {
        size_t n = strlen(series);
        for (const char *line = r.body; line != NULL && *line != '\0';) {
            if (strncmp(line, series, n) == 0 && line[n] == ' ') {
                v = strtod(line + n + 1, NULL);
                break;
            }
            line = strchr(line, '\n');
            line = line != NULL ? line + 1 : NULL;
        }
    }
    http_resp_free(&r);
    return v;
}

bool wait_drained(int gw_port, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
    int zeros = 0;

    /* The counts lag the spool by up to half a second: two readings of nothing open, a refresh
     * apart, mean it is so. */
    while (now_us() < end && zeros < 2) {
        double q = metric(gw_port, "tracegate_spool_records{state=\"queued\"}");
        double d = metric(gw_port, "tracegate_spool_records{state=\"delivering\"}");
        zeros = q == 0 && d == 0 ? zeros + 1 : 0;
        usleep(zeros == 1 ? 700000 : 100000);
    }
    return zeros >= 2;
}

bool wait_ledger_stored(int stub_port, int want, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;

    while (now_us() < end) {
        json_t *l = ledger_get(stub_port);
        int stored = l != NULL ? (int)json_integer_value(json_object_get(l, "stored")) : -1;
        json_decref(l);
        if (stored >= want) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

size_t durable_vars(struct conf_var *vars, const char *spool_dir, const char *const *overrides)
{
    static const char *const defaults[][2] = {
        {"MODE", "on_failure"},     {"SYNC_WAIT_MS", "2000"}, {"REQUIRE_KEY", "true"},
        {"BACKEND_DEDUP", "true"},  {"MAX_AGE_S", "3600"},    {"SPOOL_MAX_BYTES", "1073741824"},
        {"RESPONSE_TTL_S", "3600"}, {"ON_DEAD", "skip"},      {"SYNCHRONOUS", "full"},
        {"DRAIN_RPS", "500"},       {"CONCURRENCY", "16"},    {"MIN_FREE_BYTES", "0"},
    };
    static char values[DURABLE_VARS][64];
    size_t n = 0;

    vars[n++] = (struct conf_var){"SPOOL_DIR", spool_dir};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        const char *v = defaults[i][1];
        size_t len = strlen(defaults[i][0]);
        for (size_t j = 0; overrides != NULL && overrides[j] != NULL; j++) {
            if (strncmp(overrides[j], defaults[i][0], len) == 0 && overrides[j][len] == '=') {
                v = overrides[j] + len + 1;
            }
        }
        snprintf(values[n], sizeof(values[n]), "%s", v);
        vars[n] = (struct conf_var){defaults[i][0], values[n]};
        n++;
    }
    return n;
}

void durable_fixture_start(struct fixture *f, char *spool, size_t cap)
{
    const char *specs[] = {"0:questionnaire"};

    spool_dir_make(spool, cap);
    fixture_stub_start(f, specs, 1, false);
}

void durable_gateway_start(struct fixture *f, const char *spool_dir, const char *const *overrides)
{
    struct conf_var vars[DURABLE_VARS];
    size_t n = durable_vars(vars, spool_dir, overrides);

    fixture_gateway_start(f, "durable.json", vars, n);
}
