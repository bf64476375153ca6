#ifndef TG_SPOOL_CODEC_H
#define TG_SPOOL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

struct tg_buf;
struct tg_kv;

/* What the spool keeps of a submission and of an answer, as bytes to seal: a tag, then
 * length-prefixed items (4 bytes big-endian, the bytes, a NUL the length does not count, so
 * decoded strings are C strings in place). Pure functions; any thread. */

#define TG_CODEC_HEADERS_MAX 64 /* headers a stored request or answer may carry */

/* A request to deliver: what the upstream call sends, less what each attempt adds itself. */
struct tg_spool_request {
    const char *method;
    const char *path;         /* the upstream path with its query, from the route */
    const struct tg_kv *hdrs; /* the stored client headers (the route's allowlist) */
    size_t n_hdrs;
    const char *body;
    size_t body_len;
};

/* An answer to give, or to give again: status, headers, body. */
struct tg_spool_answer {
    int status;
    const struct tg_kv *hdrs;
    size_t n_hdrs;
    const char *body;
    size_t body_len;
};

/* Appends the encoding of q (or a) to out. TG_OK, TG_ENOMEM or TG_EINVAL (too many headers). */
int tg_codec_request_encode(const struct tg_spool_request *q, struct tg_buf *out) TG_MUST_CHECK;
int tg_codec_answer_encode(const struct tg_spool_answer *a, struct tg_buf *out) TG_MUST_CHECK;

/* Decodes p[0..len) into q (or a): every string points into p, which must outlive q; hdrs is room
 * for TG_CODEC_HEADERS_MAX headers. TG_OK or TG_EINVAL when the bytes are not such an encoding. */
int tg_codec_request_decode(const uint8_t *p, size_t len, struct tg_spool_request *q,
                            struct tg_kv *hdrs) TG_MUST_CHECK;
int tg_codec_answer_decode(const uint8_t *p, size_t len, struct tg_spool_answer *a,
                           struct tg_kv *hdrs) TG_MUST_CHECK;

#endif
