#include "tests/support/stub_ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tests/support/clock.h"
#include "tests/support/proc.h"

int stub_start(struct proc *p, const char *const *specs, size_t n_specs, const char *record_path)
{
    const char *argv[40] = {TG_STUB_BINARY};
    size_t n = 1;

    for (size_t i = 0; i < n_specs && n < 36; i++) {
        argv[n++] = "--listen";
        argv[n++] = specs[i];
    }
    if (record_path != NULL) {
        argv[n++] = "--record";
        argv[n++] = record_path;
    }
    argv[n] = NULL;
    return proc_spawn(p, argv, n_specs);
}

void temp_path(char *path, size_t cap, const char *tag)
{
    static int seq;

    snprintf(path, cap, "/tmp/tg-%s-%d-%d-%llu", tag, (int)getpid(), ++seq,
             (unsigned long long)now_us());
}

json_t *stub_records(const char *record_path)
{
    json_t *all = json_array();
    FILE *f = fopen(record_path, "r");
    char *line = NULL;
    size_t cap = 0;

    if (f == NULL) {
        return all;
    }
    while (getline(&line, &cap, f) != -1) {
        json_t *o = json_loads(line, 0, NULL);
        if (o != NULL) {
            json_array_append_new(all, o);
        }
    }
    free(line);
    fclose(f);
    return all;
}

json_t *stub_last_request(const char *record_path, const char *skip)
{
    json_t *all = stub_records(record_path);
    json_t *last = NULL;
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 &&
            (skip == NULL ||
             strstr(json_string_value(json_object_get(o, "target")), skip) == NULL)) {
            last = o;
        }
    }
    json_incref(last);
    json_decref(all);
    return last;
}

const char *record_header(const json_t *rec, const char *name)
{
    size_t i;
    json_t *pair;

    json_array_foreach(json_object_get(rec, "headers"), i, pair)
    {
        if (strcasecmp(json_string_value(json_array_get(pair, 0)), name) == 0) {
            return json_string_value(json_array_get(pair, 1));
        }
    }
    return NULL;
}
