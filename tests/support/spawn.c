#include "tests/support/spawn.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int spawn(struct proc *p, const char *const *argv)
{
    int fd;

    memset(p->ports, 0, sizeof(p->ports));
    p->n_ports = 0;
    snprintf(p->log_path, sizeof(p->log_path), "/tmp/tg-test-XXXXXX");
    fd = mkstemp(p->log_path);
    if (fd == -1) {
        return -1;
    }
    p->pid = fork();
    if (p->pid == -1) {
        close(fd);
        return -1;
    }
    if (p->pid == 0) {
        /* A test that crashes or times out never reaches its teardown: the child goes with it
         * rather than outlive the run. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd);
    return 0;
}

/* Reads the log for listening lines until want of them appeared or 5 s passed. */
static int wait_listening(struct proc *p, size_t want)
{
    uint64_t end = now_us() + 5000000u;

    while (now_us() < end) {
        char *log = proc_log(p);
        const char *s = log;
        size_t n = 0;
        int status;

        while (log != NULL && (s = strstr(s, "\"event\":\"listening\"")) != NULL) {
            const char *port = strstr(s, "\"port\":");
            if (port != NULL && n < PROC_PORTS_MAX) {
                p->ports[n++] = atoi(port + 7);
            }
            s += 10;
        }
        free(log);
        if (n >= want) {
            p->n_ports = n;
            return 0;
        }
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

int gateway_start(struct proc *p, const char *conf_path, const char *const *extra)
{
    const char *argv[32] = {TG_BINARY, "-c", conf_path, "--port", "0"};
    size_t n = 5;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    if (spawn(p, argv) != 0) {
        return -1;
    }
    return wait_listening(p, 1);
}

int stub_start(struct proc *p, const char *const *specs, size_t n_specs, const char *record_path)
{
    const char *argv[40] = {TG_STUB_BINARY};
    size_t n = 1;

    for (size_t i = 0; i < n_specs && n < 36; i++) {
        argv[n++] = "--listen";
        argv[n++] = specs[i];
    }
    if (record_path != NULL) {
        argv[n++] = "--record";
        argv[n++] = record_path;
    }
    argv[n] = NULL;
    if (spawn(p, argv) != 0) {
        return -1;
    }
    return wait_listening(p, n_specs);
}

void proc_signal(const struct proc *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
    }
}

int proc_stop(struct proc *p, int sig, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
    int status;

    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, sig);
    while (now_us() < end) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(5000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    return -1;
}

char *proc_log(const struct proc *p)
{
    FILE *f = fopen(p->log_path, "rb");
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    char chunk[8192];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) {
        buf = calloc(1, 1);
    } else {
        buf[len] = '\0';
    }
    return buf;
}

int proc_log_count(const struct proc *p, const char *const *needles)
{
    char *log = proc_log(p);
    char *line;
    char *save = NULL;
    int count = 0;

    if (log == NULL) {
        return 0;
    }
    for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        bool all = true;
        for (size_t i = 0; needles[i] != NULL && all; i++) {
            all = strstr(line, needles[i]) != NULL;
        }
        count += all;
    }
    free(log);
    return count;
}

int proc_log_wait(const struct proc *p, const char *const *needles, int want, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
    int n;

    while ((n = proc_log_count(p, needles)) < want && now_us() < end) {
        usleep(5000);
    }
    return n;
}

int conf_vwrite(char *path, size_t cap, const char *fmt, va_list ap)
{
    FILE *f;
    int fd;

    snprintf(path, cap, "/tmp/tg-conf-XXXXXX.json");
    fd = mkstemps(path, 5);
    if (fd == -1) {
        return -1;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    vfprintf(f, fmt, ap);
    fclose(f);
    return 0;
}

int conf_write(char *path, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = conf_vwrite(path, cap, fmt, ap);
    va_end(ap);
    return rc;
}

void temp_path(char *path, size_t cap, const char *tag)
{
    static int seq;

    snprintf(path, cap, "/tmp/tg-%s-%d-%d-%llu", tag, (int)getpid(), ++seq,
             (unsigned long long)now_us());
}

json_t *stub_records(const char *record_path)
{
    json_t *all = json_array();
    FILE *f = fopen(record_path, "r");
    char *line = NULL;
    size_t cap = 0;

    if (f == NULL) {
        return all;
    }
    while (getline(&line, &cap, f) != -1) {
        json_t *o = json_loads(line, 0, NULL);
        if (o != NULL) {
            json_array_append_new(all, o);
        }
    }
    free(line);
    fclose(f);
    return all;
}

const char *record_header(const json_t *rec, const char *name)
{
    size_t i;
    json_t *pair;

    json_array_foreach(json_object_get(rec, "headers"), i, pair)
    {
        if (strcasecmp(json_string_value(json_array_get(pair, 0)), name) == 0) {
            return json_string_value(json_array_get(pair, 1));
        }
    }
    return NULL;
}

struct sink {
    char *buf;
    size_t len;
};

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

int proc_fd_count(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

void fixture_stub_start(struct fixture *f, const char *const *specs, size_t n_specs, bool record)
{
    f->record[0] = '\0';
    if (record) {
        temp_path(f->record, sizeof(f->record), "rec");
    }
    cr_assert_eq(stub_start(&f->stub, specs, n_specs, record ? f->record : NULL), 0,
                 "stub did not start: %s", f->stub.log_path);
}

void fixture_gateway_start(struct fixture *f, const char *conf_fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, conf_fmt);
    rc = conf_vwrite(f->conf_path, sizeof(f->conf_path), conf_fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, 0, "cannot write the conf %s", f->conf_path);
    cr_assert_eq(gateway_start(&f->gw, f->conf_path, NULL), 0, "gateway did not start: %s",
                 f->gw.log_path);
}

void fixture_stop(struct fixture *f)
{
    int gw_rc = proc_stop(&f->gw, SIGTERM, 10000);
    int stub_rc = proc_stop(&f->stub, SIGTERM, 5000);

    if (f->conf_path[0] != '\0') {
        unlink(f->conf_path);
    }
    if (f->record[0] != '\0') {
        unlink(f->record);
    }
    cr_expect_eq(gw_rc, 0, "gateway exit %d, log %s", gw_rc, f->gw.log_path);
    cr_expect_eq(stub_rc, 0, "stub exit %d, log %s", stub_rc, f->stub.log_path);
}
