#include "tests/support/fixture.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/conf_template.h"
#include "tests/support/stub_ctl.h"

void fixture_stub_start(struct fixture *f, const char *const *specs, size_t n_specs, bool record)
{
    f->record[0] = '\0';
    if (record) {
        temp_path(f->record, sizeof(f->record), "rec");
    }
    cr_assert_eq(stub_start(&f->stub, specs, n_specs, record ? f->record : NULL), 0,
                 "stub did not start: %s", f->stub.log_path);
}

void fixture_gateway_start(struct fixture *f, const char *tmpl, const struct conf_var *vars,
                           size_t n_vars)
{
    char names[PROC_PORTS_MAX][32];
    char ports[PROC_PORTS_MAX][16];
    struct conf_var all[PROC_PORTS_MAX + 16];
    size_t n = 0;

    cr_assert_leq(n_vars, 16, "too many conf vars");
    for (size_t i = 0; i < f->stub.n_ports; i++) {
        snprintf(names[i], sizeof(names[i]), "STUB_PORT_%zu", i);
        snprintf(ports[i], sizeof(ports[i]), "%d", f->stub.ports[i]);
        all[n++] = (struct conf_var){names[i], ports[i]};
    }
    for (size_t i = 0; i < n_vars; i++) {
        all[n++] = vars[i];
    }
    conf_template_write(f->conf_path, sizeof(f->conf_path), tmpl, all, n);
    cr_assert_eq(gateway_start(&f->gw, f->conf_path, NULL), 0, "gateway did not start: %s",
                 f->gw.log_path);
}

void fixture_stop(struct fixture *f)
{
    int gw_rc = proc_stop(&f->gw, SIGTERM, 10000);
    int stub_rc = proc_stop(&f->stub, SIGTERM, 5000);

    if (f->conf_path[0] != '\0') {
        unlink(f->conf_path);
    }
    if (f->record[0] != '\0') {
        unlink(f->record);
    }
    cr_expect_eq(gw_rc, 0, "gateway exit %d, log %s", gw_rc, f->gw.log_path);
    if (f->stub.pid > 0 || f->stub.log_path[0] != '\0') {
        cr_expect_eq(stub_rc, 0, "stub exit %d, log %s", stub_rc, f->stub.log_path);
    }
}
