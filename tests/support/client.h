#ifndef TG_TESTS_SUPPORT_CLIENT_H
#define TG_TESTS_SUPPORT_CLIENT_H

/* The test's side of a connection to 127.0.0.1: whole HTTP exchanges with libcurl, and raw TCP
 * for what curl would not send (broken framing, trickled bytes, resets). Any thread: each call
 * uses its own handle. */

#include <stddef.h>

/* An HTTP answer read by the test client. */
struct http_resp {
    long status;
    char *body; /* NUL-terminated */
    size_t body_len;
    char *headers; /* raw header block, NUL-terminated */
    double total_ms;
    int curl_rc;
};

/* One request with libcurl to 127.0.0.1:port. headers: NULL-terminated "Name: value" list or
 * NULL. body may be NULL. timeout_ms 0 means 10 s. Returns 0 when an answer arrived; out is
 * filled either way and must be freed with http_resp_free. */
int http_do(int port, const char *method, const char *target, const char *const *headers,
            const char *body, size_t body_len, long timeout_ms, struct http_resp *out);

/* Value of response header name (case-insensitive) copied into buf, or NULL when absent. */
const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t cap);

/* Frees what r owns. */
void http_resp_free(struct http_resp *r);

/* Raw TCP client to 127.0.0.1:port; -1 on failure. */
int tcp_connect(int port);

/* Sends all of buf; 0 or -1. */
int tcp_send(int fd, const char *buf, size_t len);

/* Reads until the peer closes or timeout_ms passes; returns a malloc'd NUL-terminated buffer
 * (never NULL) and its length in *len. */
char *tcp_read_all(int fd, int timeout_ms, size_t *len);

/* Closes with RST instead of FIN. */
void tcp_reset(int fd);

/* A port on 127.0.0.1 nothing listens on right now (the kernel's pick, released): connecting
 * to it is refused. -1 on failure. */
int tcp_free_port(void);

#endif
