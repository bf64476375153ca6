#ifndef TG_GATEWAY_JSONPOS_H
#define TG_GATEWAY_JSONPOS_H

#include <stddef.h>

/* A position index over JSON text: for every value its JSON path, and the line and column where
 * the value (and, for an object member, its key) starts. jansson reports positions only for
 * syntax errors; this index lets the conf loader report FILE:LINE:COL for semantic errors too.
 *
 * Positions follow jansson's convention: lines start at 1 and only '\n' ends one; columns start
 * at 1 and count UTF-8 characters, not bytes (a '\r' or a tab is one column).
 *
 * Paths: "" is the document itself; an object member appends ".key" (no dot at the start of the
 * path), an array element appends "[i]". A key that is empty or holds any of . [ ] " \ or a
 * control character is written in brackets as a JSON string instead. The document
 *     {"a.b": {"c": [7]}, "x": 1}
 * has the paths
 *     (empty)   ["a.b"]   ["a.b"].c   ["a.b"].c[0]   x
 * Every path this module prints or accepts uses that one spelling, so lookups are plain string
 * comparisons. */

#define TG_JPATH_MAX 512 /* room for any path the conf code builds; longer ones are truncated */

struct tg_jpos;

/* Indexes text (len bytes; need not be NUL-terminated). Meant for text jansson accepted, but
 * tolerates a syntax error: it keeps what it indexed before the error, so a duplicate key found
 * by jansson can still be located. Returns NULL only when out of memory. Caller frees. */
struct tg_jpos *tg_jpos_build(const char *text, size_t len);

/* Frees pos (NULL is a no-op). */
void tg_jpos_free(struct tg_jpos *pos);

/* Sets *line and *col to where the value at path starts. Returns TG_OK, or TG_EINVAL (outputs
 * untouched) when path is not indexed. With a duplicate key, the first occurrence is found. */
int tg_jpos_find(const struct tg_jpos *pos, const char *path, int *line, int *col);

/* Same as tg_jpos_find, but for an object member gives where its key starts (for an array
 * element or the document, where the value starts). */
int tg_jpos_find_key(const struct tg_jpos *pos, const char *path, int *line, int *col);

/* Like tg_jpos_find (or tg_jpos_find_key when key is nonzero) for path or, when path is not
 * indexed, for its closest indexed ancestor (ancestors always give the value position). Returns
 * the length of the path prefix found (0 for the document), or -1 when nothing is indexed. */
long tg_jpos_find_nearest(const struct tg_jpos *pos, const char *path, int key, int *line,
                          int *col);

/* Finds the first object member, in text order, whose key repeats an earlier key of the same
 * object. Sets *path (borrowed from pos) and the position of that member's key. Returns TG_OK,
 * TG_EINVAL when there is none, or TG_ENOMEM. */
int tg_jpos_first_dup(const struct tg_jpos *pos, const char **path, int *line, int *col);

/* Writes parent's path extended by member key into out (cap bytes, NUL-terminated, truncated if
 * needed), spelled as described above. parent may alias nothing in out. Returns out. */
const char *tg_jpos_path_key(char *out, size_t cap, const char *parent, const char *key);

/* Writes parent's path extended by array index i into out, like tg_jpos_path_key. Returns out. */
const char *tg_jpos_path_index(char *out, size_t cap, const char *parent, size_t i);

/* Writes s as a double-quoted JSON string for messages (control characters escaped; cut with
 * "..." after 64 bytes) into out (cap bytes, NUL-terminated). Returns out. */
const char *tg_jpos_quote(char *out, size_t cap, const char *s);

#endif
