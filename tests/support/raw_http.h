#ifndef TG_TESTS_SUPPORT_RAW_HTTP_H
#define TG_TESTS_SUPPORT_RAW_HTTP_H

/* A raw HTTP/1.1 client for what curl would not send (broken framing, pipelined requests,
 * plain text to a TLS port): bytes out on a fresh connection to 127.0.0.1, then the answers
 * parsed as they come back, and whether the peer closed. Test thread only (cr_assert). */

#include <stdbool.h>
#include <stddef.h>

#define RAW_MAX_RESPONSES 4
#define RAW_READ_TIMEOUT  5000 /* ms for an answer; generous for an ASan build */
#define RAW_CLOSE_TIMEOUT 3000 /* ms to wait for the peer to close after an answer */

/* What came back on one connection. */
struct raw_answer {
    char *buf; /* every byte received, NUL-terminated */
    size_t len;
    size_t n;                           /* complete responses parsed */
    int status[RAW_MAX_RESPONSES];      /* their status codes */
    size_t head_off[RAW_MAX_RESPONSES]; /* where each response starts in buf */
    size_t body_off[RAW_MAX_RESPONSES]; /* where each body starts in buf */
    size_t body_len[RAW_MAX_RESPONSES];
    bool closed; /* the peer closed (FIN or RST) */
};

/* Reads from fd until want responses are complete (and, with wait_close, until the peer
 * closes), the peer closes, or the time runs out. Not for answers to HEAD: their
 * Content-Length names a body that never comes. */
void raw_read_answer(int fd, size_t want, bool wait_close, struct raw_answer *a);

/* Sends msg[0..len) on a new connection to port and reads the answer as raw_read_answer. A
 * failed send is no error: the peer may close before reading everything. */
void raw_exchange(int port, const char *msg, size_t len, size_t want, bool wait_close,
                  struct raw_answer *a);

/* Frees what a owns and zeroes it. */
void raw_answer_free(struct raw_answer *a);

#endif
