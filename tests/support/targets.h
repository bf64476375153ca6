#ifndef TG_TESTS_SUPPORT_TARGETS_H
#define TG_TESTS_SUPPORT_TARGETS_H

/* The targets of an upstream pool as a test sees them: one tg-stub process per target, so that
 * each can be killed and brought back on its own port, all recording into one file (each
 * request record names the port it came in on). Test thread only; failures fail the test. */

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/conf_template.h"
#include "tests/support/proc.h"

#define TARGETS_MAX 4

struct targets {
    struct proc p[TARGETS_MAX];
    size_t n;
    int port[TARGETS_MAX]; /* kept when a target is down */
    char port_text[TARGETS_MAX][16];
    char name[TARGETS_MAX][24]; /* "T0", "T1"...: the conf template placeholders */
    char record[256];
    char dead_text[16];
    /* ${T0}... = the ports, for conf_template_write; then ${DEAD} when targets_gateway_start
     * was asked for it */
    struct conf_var vars[TARGETS_MAX + 1];
    size_t n_vars; /* n, or n + 1 with ${DEAD} */
};

/* Starts n targets (test service) on ports the kernel picks. */
void targets_start(struct targets *t, size_t n);

/* Stops target i with sig (SIGKILL: it dies with its connections open) and waits for it. */
void targets_kill(struct targets *t, size_t i, int sig);

/* Starts target i again on its port. */
void targets_restart(struct targets *t, size_t i);

/* Makes target i answer every request as if its query held query (tg-stub's /_stub/behave);
 * "" restores it. */
void targets_behave(struct targets *t, size_t i, const char *query);

/* Request records on target i's port whose request-target starts with prefix. */
int targets_count(const struct targets *t, size_t i, const char *prefix);

/* Request records on any target whose request-target starts with prefix. */
int targets_count_all(const struct targets *t, const char *prefix);

/* Connections target i accepted (its "open" records). */
int targets_opened(const struct targets *t, size_t i);

/* Stops the targets still running (each must exit 0) and removes the record file. */
void targets_stop(struct targets *t);

/* The .init of a suite around a pool: starts n targets, writes conf_path (cap >= 32) from
 * template tmpl with their ${T0}... and, when dead is true, ${DEAD} (a port on 127.0.0.1 nothing
 * listens on: connecting to it is refused), and starts the gateway gw on it. t->vars and
 * t->n_vars keep the placeholders for a later conf_template_rewrite. Fails the test if the
 * gateway does not start. */
void targets_gateway_start(struct targets *t, size_t n, bool dead, const char *tmpl,
                           struct proc *gw, char *conf_path, size_t cap);

/* Its .fini: stops gw (SIGTERM, 10 s; expects exit 0), then the targets (targets_stop), and
 * removes conf_path. */
void targets_gateway_stop(struct targets *t, struct proc *gw, const char *conf_path);

#endif
