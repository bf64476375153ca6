#ifndef TG_TESTS_SUPPORT_FIXTURE_H
#define TG_TESTS_SUPPORT_FIXTURE_H

/* What most integration suites run against: the stub upstream, a conf naming its ports, and the
 * gateway on that conf. A suite keeps one struct fixture in a static (zeroed) and calls the
 * functions below from its .init and .fini; failures fail the test with the log path. */

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/proc.h"

struct conf_var;

struct fixture {
    struct proc stub;
    struct proc gw;
    char conf_path[128]; /* "" until written */
    char record[256];    /* the stub's record file, "" when it does not record */
};

/* Starts the stub with one --listen per spec ("0:test"...), recording to a fresh temporary
 * f->record when record is true. Fails the test (cr_assert, with the log path) if it does not
 * start. */
void fixture_stub_start(struct fixture *f, const char *const *specs, size_t n_specs, bool record);

/* Writes the conf from template tmpl (tests/integration/conf/, see conf_template.h) to
 * f->conf_path and starts the gateway on it. The placeholders are ${STUB_PORT_0}, ${STUB_PORT_1}
 * ... (the stub's ports, one per spec given to fixture_stub_start) and those in vars (may be
 * NULL when n_vars is 0). Fails the test (cr_assert, with the log path) if either step fails. */
void fixture_gateway_start(struct fixture *f, const char *tmpl, const struct conf_var *vars,
                           size_t n_vars);

/* Stops the gateway (SIGTERM, 10 s) and the stub (SIGTERM, 5 s), removes the conf and record
 * files, and expects (cr_expect, with the log path) both to exit 0: under ASan, exit 0 also
 * means nothing leaked. */
void fixture_stop(struct fixture *f);

#endif
