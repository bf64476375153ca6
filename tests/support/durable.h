#ifndef TG_TESTS_SUPPORT_DURABLE_H
#define TG_TESTS_SUPPORT_DURABLE_H

/* What the durable-route suites share: a spool directory per test, the submit call a client
 * makes, the stub's ledger (tests/support/stub/ledger.c) and the gateway's /metrics read back,
 * and the conf template's placeholders with their defaults. Any thread unless said. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "tests/support/client.h"

struct conf_var;
struct fixture;

/* Makes a fresh spool directory (/tmp/tg-spool-XXXXXX) into dir (cap >= 64); removes one with
 * everything in it. Test thread (cr_assert). */
void spool_dir_make(char *dir, size_t cap);
void spool_dir_remove(const char *dir);

/* POST /submit on port with Idempotency-Key key (NULL: none), X-Patient-Id patient (NULL:
 * none) and body; 0 when an answer came, -1 otherwise (out filled either way, free it).
 * timeout_ms 0: 10 s. */
int submit(int port, const char *key, const char *patient, const char *body, long timeout_ms,
           struct http_resp *out);

/* The stub's ledger: GET /_stub/ledger (a new reference, NULL when the stub did not answer). */
json_t *ledger_get(int stub_port);
/* POST /_stub/ledger/config?query (cr_assert on anything but 200). Test thread. */
void ledger_config(int stub_port, const char *query);
/* stored and arrivals of key in a ledger dump (0 when absent). */
int ledger_stored(const json_t *ledger, const char *key);
int ledger_arrivals(const json_t *ledger, const char *key);

/* The value of the /metrics line that starts with series (e.g.
 * "tracegate_spool_records{state=\"queued\"}"), or -1 when absent or unreachable. */
double metric(int gw_port, const char *series);

/* Waits up to timeout_ms until no record is queued or delivering (the spool's counts, refreshed
 * every 2 s by the gateway). Returns true when it got there. */
bool wait_drained(int gw_port, int timeout_ms);

/* Waits up to timeout_ms until the ledger holds want stored records in all. */
bool wait_ledger_stored(int stub_port, int want, int timeout_ms);

/* The conf template's placeholders for durable.json and their defaults: vars (room for
 * DURABLE_VARS) gets them with the overrides applied (NAME=VALUE strings, NULL-terminated). */
#define DURABLE_VARS 13
size_t durable_vars(struct conf_var *vars, const char *spool_dir, const char *const *overrides);

/* The durable suites' .init: a fresh spool directory into spool (cap >= 64, spool_dir_make) and
 * f's stub with one questionnaire listener, not recording. Test thread (cr_assert). */
void durable_fixture_start(struct fixture *f, char *spool, size_t cap);

/* Starts f's gateway on durable.json with spool_dir and the overrides (NAME=VALUE,
 * NULL-terminated, may be NULL) over durable_vars' defaults. Test thread (cr_assert). */
void durable_gateway_start(struct fixture *f, const char *spool_dir, const char *const *overrides);

#endif
