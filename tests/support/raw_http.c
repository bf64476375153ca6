#include "tests/support/raw_http.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"

/* Content-Length of the header block head[0..len), or 0. */
static size_t content_length(const char *head, size_t len)
{
    const char *p = head;

    while (p < head + len) {
        const char *eol = memmem(p, (size_t)(head + len - p), "\r\n", 2);
        if (eol == NULL) {
            break;
        }
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            return (size_t)strtoul(p + 15, NULL, 10);
        }
        p = eol + 2;
    }
    return 0;
}

/* Parses the complete responses in a->buf (answers to non-HEAD requests carry a length). */
static void parse(struct raw_answer *a)
{
    size_t off = 0;

    a->n = 0;
    while (a->n < RAW_MAX_RESPONSES && off < a->len) {
        const char *end = memmem(a->buf + off, a->len - off, "\r\n\r\n", 4);
        size_t head_len;
        size_t clen;
        if (end == NULL || strncmp(a->buf + off, "HTTP/1.", 7) != 0) {
            return;
        }
        head_len = (size_t)(end - (a->buf + off)) + 4;
        clen = content_length(a->buf + off, head_len);
        if (off + head_len + clen > a->len) {
            return;
        }
        a->status[a->n] = (int)strtol(a->buf + off + 9, NULL, 10);
        a->head_off[a->n] = off;
        a->body_off[a->n] = off + head_len;
        a->body_len[a->n] = clen;
        a->n++;
        off += head_len + clen;
    }
}

/* Reads until want responses are complete (and, with wait_close, until the gateway closes),
 * the peer closes, or the time runs out. */
void raw_read_answer(int fd, size_t want, bool wait_close, struct raw_answer *a)
{
    uint64_t end = now_us() + (uint64_t)RAW_READ_TIMEOUT * 1000u;
    uint64_t close_end = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = now_us();
        uint64_t until = close_end != 0 ? close_end : end;
        char chunk[16384];
        ssize_t k;

        if (a->n >= want && close_end == 0) {
            if (!wait_close) {
                return;
            }
            close_end = now + (uint64_t)RAW_CLOSE_TIMEOUT * 1000u;
            until = close_end;
        }
        if (now >= until || poll(&pfd, 1, (int)((until - now) / 1000) + 1) <= 0) {
            return;
        }
        k = recv(fd, chunk, sizeof(chunk), 0);
        if (k <= 0) {
            a->closed = k == 0 || errno == ECONNRESET;
            return;
        }
        a->buf = realloc(a->buf, a->len + (size_t)k + 1);
        cr_assert_not_null(a->buf);
        memcpy(a->buf + a->len, chunk, (size_t)k);
        a->len += (size_t)k;
        a->buf[a->len] = '\0';
        parse(a);
    }
}

void raw_exchange(int port, const char *msg, size_t len, size_t want, bool wait_close,
                  struct raw_answer *a)
{
    int fd = tcp_connect(port);

    memset(a, 0, sizeof(*a));
    cr_assert_geq(fd, 0);
    /* The gateway may close before reading everything: a failed send is not an error here. */
    (void)tcp_send(fd, msg, len);
    raw_read_answer(fd, want, wait_close, a);
    close(fd);
}

void raw_answer_free(struct raw_answer *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}
