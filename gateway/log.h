#ifndef TG_GATEWAY_LOG_H
#define TG_GATEWAY_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

struct tg_req;

enum tg_log_level {
    TG_LOG_DEBUG = 0,
    TG_LOG_INFO = 1,
    TG_LOG_WARN = 2,
    TG_LOG_ERROR = 3,
};

/* Lines below this level are dropped (default TG_LOG_INFO). Call before workers start. */
void tg_log_set_level(enum tg_log_level lvl);

/* A JSON line being built on the stack: one write(2) per line, no allocation. The fixed fields
 * ts, level, event, and trace_id/span_id when req is non-NULL, are written by tg_logline_begin. */
struct tg_logline {
    char buf[2048];
    size_t len;
    int truncated;
    int skip; /* level below the threshold: every call is a no-op */
};

/* Starts a line. req is borrowed and may be NULL for lines not about a request. */
void tg_logline_begin(struct tg_logline *l, enum tg_log_level lvl, const struct tg_req *req,
                      const char *event);
/* Starts a line written whatever the level: for the few lines other programs wait for
 * ("listening"). */
void tg_logline_begin_always(struct tg_logline *l, enum tg_log_level lvl, const char *event);

/* Adds "key":"value" (JSON-escaped, non-printable and non-ASCII bytes escaped). NULL value: no-op.
 */
void tg_logline_str(struct tg_logline *l, const char *key, const char *value);
/* Same for len bytes of value. */
void tg_logline_strn(struct tg_logline *l, const char *key, const char *value, size_t len);
/* Adds "key":n. */
void tg_logline_int(struct tg_logline *l, const char *key, int64_t n);
/* Adds "key":true/false. */
void tg_logline_bool(struct tg_logline *l, const char *key, int b);
/* Adds "key":x with three decimals. */
void tg_logline_ms(struct tg_logline *l, const char *key, double ms);
/* Closes the line and writes it to stdout with one write(2). */
void tg_logline_end(struct tg_logline *l);

/* Makes this thread gather its lines until tg_log_flush (worker threads: once per loop pass).
 * tg_log_batch_stop flushes and returns to one write per line. */
void tg_log_batch_start(void);
void tg_log_flush(void);
void tg_log_batch_stop(void);

/* One line with a "msg" field. */
void tg_log(enum tg_log_level lvl, const struct tg_req *req, const char *event, const char *fmt,
            ...) TG_PRINTF(4, 5);

#endif
