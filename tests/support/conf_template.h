#ifndef TG_TESTS_SUPPORT_CONF_TEMPLATE_H
#define TG_TESTS_SUPPORT_CONF_TEMPLATE_H

/* Gateway confs for integration tests, written from templates: the .json files in
 * tests/integration/conf/ of the source tree, plain JSON but for placeholders ${NAME} (NAME of A-Z,
 * 0-9 and _) where a value is only known at run time, such as "url":
 * "http://127.0.0.1:${STUB_PORT_0}". Each placeholder takes its value, as text, from a small table
 * the test passes; a template naming a placeholder the table lacks fails the test. Test thread only
 * (failures use cr_assert). */

#include <stddef.h>

/* One row of the table: ${name} becomes value. */
struct conf_var {
    const char *name;
    const char *value;
};

/* The text of template tmpl (a file name in tests/integration/conf/) with every placeholder
 * replaced; malloc'd, caller frees. Fails the test (cr_assert, naming the template) when the
 * file cannot be read, a placeholder is not closed, or vars has no value for one. */
char *conf_template_expand(const char *tmpl, const struct conf_var *vars, size_t n_vars);

/* Expands tmpl into a new temporary file /tmp/tg-conf-XXXXXX.json; path receives its name
 * (cap >= 32). The caller unlinks it. Fails the test as conf_template_expand does, or when the
 * file cannot be written. */
void conf_template_write(char *path, size_t cap, const char *tmpl, const struct conf_var *vars,
                         size_t n_vars);

/* Expands tmpl over the existing file path, replacing its content (the gateway reads its conf
 * file again on SIGHUP). Fails the test as conf_template_write does. */
void conf_template_rewrite(const char *path, const char *tmpl, const struct conf_var *vars,
                           size_t n_vars);

#endif
