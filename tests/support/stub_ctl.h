#ifndef TG_TESTS_SUPPORT_STUB_CTL_H
#define TG_TESTS_SUPPORT_STUB_CTL_H

/* The stub upstream (tg-stub, sources in tests/support/stub/) seen from a test: starting it,
 * and reading what it recorded. The stub writes one JSON object per line to its record file:
 * {"event":"open"|"request"|"close", "conn_id":N, "port":P, "t_us":T, ...} (P: the port of the
 * listener the connection came in on); request records add "method", "target", "headers"
 * ([[name, value]...]), "body_len" and "body_sha" (FNV-1a, hex), close records "by" and
 * "while". */

#include <stddef.h>

#include <jansson.h>

struct proc;

/* Starts the stub with one --listen per spec ("0:test", "0:questionnaire"...), recording to
 * record_path when not NULL; waits for every listening line (p->ports[i] is spec i's port).
 * 0 or -1 (the log says why). */
int stub_start(struct proc *p, const char *const *specs, size_t n_specs, const char *record_path);

/* A fresh temporary file name (not created) for stub records: /tmp/tg-<tag>-... */
void temp_path(char *path, size_t cap, const char *tag);

/* Every record line of the stub so far, as a JSON array (caller decrefs; empty when the file
 * does not exist yet). */
json_t *stub_records(const char *record_path);

/* The last request record in record_path whose request-target does not contain skip (NULL: any
 * request), a new reference (caller decrefs), or NULL when there is none. */
json_t *stub_last_request(const char *record_path, const char *skip);

/* Value of the first header called name (case-insensitive) in a stub request record, borrowed
 * from rec; NULL when rec has none. */
const char *record_header(const json_t *rec, const char *name);

#endif
