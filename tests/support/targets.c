#include "tests/support/targets.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/stub_ctl.h"

static void start_one(struct targets *t, size_t i, int port)
{
    char spec[32];
    const char *specs[] = {spec};

    snprintf(spec, sizeof(spec), "%d:test", port);
    cr_assert_eq(stub_start(&t->p[i], specs, 1, t->record), 0, "target %zu did not start: %s", i,
                 t->p[i].log_path);
    t->port[i] = t->p[i].ports[0];
}

void targets_start(struct targets *t, size_t n)
{
    cr_assert_leq(n, TARGETS_MAX);
    memset(t, 0, sizeof(*t));
    temp_path(t->record, sizeof(t->record), "rec");
    t->n = n;
    for (size_t i = 0; i < n; i++) {
        start_one(t, i, 0);
        snprintf(t->port_text[i], sizeof(t->port_text[i]), "%d", t->port[i]);
        snprintf(t->name[i], sizeof(t->name[i]), "T%zu", i);
        t->vars[i] = (struct conf_var){t->name[i], t->port_text[i]};
    }
    t->n_vars = n;
}

void targets_kill(struct targets *t, size_t i, int sig)
{
    int rc = proc_stop(&t->p[i], sig, 5000);

    cr_assert(rc == 0 || rc == 128 + sig, "target %zu exit %d: %s", i, rc, t->p[i].log_path);
}

void targets_restart(struct targets *t, size_t i)
{
    start_one(t, i, t->port[i]);
}

void targets_behave(struct targets *t, size_t i, const char *query)
{
    char target[512];
    struct http_resp r;

    snprintf(target, sizeof(target), "/_stub/behave%s%s", query[0] != '\0' ? "?" : "", query);
    cr_assert_eq(http_do(t->port[i], "GET", target, NULL, NULL, 0, 2000, &r), 0);
    cr_assert_eq(r.status, 200, "target %zu: %s", i, r.body);
    http_resp_free(&r);
}

static int count(const struct targets *t, int port, const char *prefix)
{
    json_t *all = stub_records(t->record);
    size_t k;
    json_t *o;
    int n = 0;

    json_array_foreach(all, k, o)
    {
        const char *target = json_string_value(json_object_get(o, "target"));
        n += strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 &&
             (port == 0 || json_integer_value(json_object_get(o, "port")) == port) &&
             target != NULL && strncmp(target, prefix, strlen(prefix)) == 0;
    }
    json_decref(all);
    return n;
}

int targets_count(const struct targets *t, size_t i, const char *prefix)
{
    return count(t, t->port[i], prefix);
}

int targets_count_all(const struct targets *t, const char *prefix)
{
    return count(t, 0, prefix);
}

void targets_stop(struct targets *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->p[i].pid > 0) {
            int rc = proc_stop(&t->p[i], SIGTERM, 5000);
            cr_expect_eq(rc, 0, "target %zu exit %d: %s", i, rc, t->p[i].log_path);
        }
    }
    if (t->record[0] != '\0') {
        unlink(t->record);
    }
}

int targets_opened(const struct targets *t, size_t i)
{
    json_t *all = stub_records(t->record);
    size_t k;
    json_t *o;
    int n = 0;

    json_array_foreach(all, k, o)
    {
        n += strcmp(json_string_value(json_object_get(o, "event")), "open") == 0 &&
             json_integer_value(json_object_get(o, "port")) == t->port[i];
    }
    json_decref(all);
    return n;
}

void targets_gateway_start(struct targets *t, size_t n, bool dead, const char *tmpl,
                           struct proc *gw, char *conf_path, size_t cap)
{
    targets_start(t, n);
    if (dead) {
        snprintf(t->dead_text, sizeof(t->dead_text), "%d", tcp_free_port());
        t->vars[t->n_vars++] = (struct conf_var){"DEAD", t->dead_text};
    }
    conf_template_write(conf_path, cap, tmpl, t->vars, t->n_vars);
    cr_assert_eq(gateway_start(gw, conf_path, NULL), 0, "gateway did not start: %s", gw->log_path);
}

void targets_gateway_stop(struct targets *t, struct proc *gw, const char *conf_path)
{
    int rc = proc_stop(gw, SIGTERM, 10000);

    cr_expect_eq(rc, 0, "gateway exit %d, log %s", rc, gw->log_path);
    targets_stop(t);
    unlink(conf_path);
}
