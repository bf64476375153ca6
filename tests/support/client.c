#include "tests/support/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/support/clock.h"

/* A growing NUL-terminated buffer that received bytes are appended to. */
struct sink {
    char *buf;
    size_t len;
};

/* Appends size * nmemb bytes to the sink at userp (a curl write callback). */
static size_t on_data(char *data, size_t size, size_t nmemb, void *userp)
{
    struct sink *s = userp;
    size_t n = size * nmemb;
    char *p = realloc(s->buf, s->len + n + 1);

    if (p == NULL) {
        return 0;
    }
    memcpy(p + s->len, data, n);
    s->len += n;
    p[s->len] = '\0';
    s->buf = p;
    return n;
}

int http_do(int port, const char *method, const char *target, const char *const *headers,
            const char *body, size_t body_len, long timeout_ms, struct http_resp *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct sink b = {0}, h = {0};
    char url[8192];
    CURLcode rc;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, target);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(c);
    out->curl_rc = (int)rc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->total_ms);
    out->total_ms *= 1000.0;
    out->body = b.buf != NULL ? b.buf : calloc(1, 1);
    out->body_len = b.len;
    out->headers = h.buf != NULL ? h.buf : calloc(1, 1);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line != '\0') {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol == NULL ? strlen(line) : (size_t)(eol - line);
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            size_t vl;
            while (*v == ' ') {
                v++;
            }
            vl = (size_t)(line + len - v);
            if (vl >= cap) {
                vl = cap - 1;
            }
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        line = eol == NULL ? NULL : eol + 2;
    }
    return NULL;
}

void http_resp_free(struct http_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

int tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd == -1) {
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

int tcp_send(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

char *tcp_read_all(int fd, int timeout_ms, size_t *len)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
    struct sink s = {0};

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = now_us();
        char buf[16384];
        ssize_t n;

        if (now >= end || poll(&pfd, 1, (int)((end - now) / 1000) + 1) <= 0) {
            break;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }
        on_data(buf, 1, (size_t)n, &s);
    }
    *len = s.len;
    return s.buf != NULL ? s.buf : calloc(1, 1);
}

void tcp_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

int tcp_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}
