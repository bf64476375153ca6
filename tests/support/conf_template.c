#include "tests/support/conf_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/read_file.h"

#define TEMPLATE_DIR TG_SOURCE_DIR "/tests/integration/conf/"
#define NAME_MAX_LEN 64

/* The value vars gives name[0..len), or NULL. */
static const char *lookup(const struct conf_var *vars, size_t n_vars, const char *name, size_t len)
{
    for (size_t i = 0; i < n_vars; i++) {
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) {
            return vars[i].value;
        }
    }
    return NULL;
}

char *conf_template_expand(const char *tmpl, const struct conf_var *vars, size_t n_vars)
{
    char path[1024];
    char *text;
    char *out = NULL;
    size_t out_len = 0;
    FILE *o;
    const char *p;

    snprintf(path, sizeof(path), "%s%s", TEMPLATE_DIR, tmpl);
    text = read_file(path);
    cr_assert_not_null(text, "cannot read the conf template %s", path);
    o = open_memstream(&out, &out_len);
    cr_assert_not_null(o);
    p = text;
    for (;;) {
        const char *open = strstr(p, "${");
        const char *name;
        const char *close;
        const char *value;
        size_t len;

        if (open == NULL) {
            fputs(p, o);
            break;
        }
        fwrite(p, 1, (size_t)(open - p), o);
        name = open + 2;
        len = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        close = name + len;
        cr_assert(len > 0 && len <= NAME_MAX_LEN && *close == '}',
                  "conf template %s: a placeholder is not ${NAME}: %.20s", tmpl, open);
        value = lookup(vars, n_vars, name, len);
        cr_assert_not_null(value, "conf template %s: no value for ${%.*s}", tmpl, (int)len, name);
        fputs(value, o);
        p = close + 1;
    }
    cr_assert_eq(fclose(o), 0);
    free(text);
    return out;
}

/* Writes text to the open file f (closed here) called path. */
static void write_all(FILE *f, const char *path, const char *text)
{
    size_t len = strlen(text);

    cr_assert_eq(fwrite(text, 1, len, f), len, "cannot write the conf %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write the conf %s", path);
}

void conf_template_write(char *path, size_t cap, const char *tmpl, const struct conf_var *vars,
                         size_t n_vars)
{
    char *text = conf_template_expand(tmpl, vars, n_vars);
    FILE *f;
    int fd;

    snprintf(path, cap, "/tmp/tg-conf-XXXXXX.json");
    fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0, "cannot create the conf %s", path);
    f = fdopen(fd, "w");
    cr_assert_not_null(f, "cannot write the conf %s", path);
    write_all(f, path, text);
    free(text);
}

void conf_template_rewrite(const char *path, const char *tmpl, const struct conf_var *vars,
                           size_t n_vars)
{
    char *text = conf_template_expand(tmpl, vars, n_vars);
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "cannot rewrite the conf %s", path);
    write_all(f, path, text);
    free(text);
}
