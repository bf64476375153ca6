#ifndef TG_TESTS_SUPPORT_SPAWN_H
#define TG_TESTS_SUPPORT_SPAWN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define PROC_PORTS_MAX 8

/* A child process the test started: the gateway or the stub upstream. Its stdout and stderr go
 * to log_path, which failure messages print. */
struct proc {
    pid_t pid;
    char log_path[256];
    int ports[PROC_PORTS_MAX]; /* from its {"event":"listening","port":N} lines, in order */
    size_t n_ports;
};

/* Starts the gateway on conf with --port 0 plus extra args (NULL-terminated list, may be NULL)
 * and waits up to 5 s for its listening line. Returns 0 or -1 (the log says why). */
int gateway_start(struct proc *p, const char *conf_path, const char *const *extra);

/* Starts the stub with one --listen per spec ("0:test", "0:questionnaire"...), recording to
 * record_path when not NULL; waits for every listening line. 0 or -1. */
int stub_start(struct proc *p, const char *const *specs, size_t n_specs, const char *record_path);

/* Sends sig and waits up to timeout_ms for the exit. Returns the exit status (0..255), 128+sig
 * when killed by a signal, or -1 when it did not exit in time (then it is killed). Idempotent. */
int proc_stop(struct proc *p, int sig, int timeout_ms);

/* Sends a signal without waiting. */
void proc_signal(const struct proc *p, int sig);

/* Counts lines of the process log containing every one of the given substrings
 * (NULL-terminated). */
int proc_log_count(const struct proc *p, const char *const *needles);

/* The whole log (malloc'd) for custom checks. */
char *proc_log(const struct proc *p);

/* proc_log_count once it reached want, or when timeout_ms passed: processes write their lines
 * when they get to it, which may be after the client got its answer. */
int proc_log_wait(const struct proc *p, const char *const *needles, int want, int timeout_ms);

/* Writes text to a new temporary conf file; path receives its name (cap >= 64). 0 or -1. */
int conf_write(char *path, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Same with a va_list. */
int conf_vwrite(char *path, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A fresh temporary file name (not created) for stub records. */
void temp_path(char *path, size_t cap, const char *tag);

/* Every record line of the stub so far, as a JSON array (caller decrefs). */
json_t *stub_records(const char *record_path);

/* Value of the first header called name (case-insensitive) in a stub request record, borrowed
 * from rec; NULL when rec has none. */
const char *record_header(const json_t *rec, const char *name);

/* CLOCK_MONOTONIC in microseconds (the stub's record clock). */
uint64_t now_us(void);

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
 * NULL. body may be NULL. timeout_ms 0 means 10 s. Returns 0 when an answer arrived. */
int http_do(int port, const char *method, const char *target, const char *const *headers,
            const char *body, size_t body_len, long timeout_ms, struct http_resp *out);

/* Value of response header name (case-insensitive) copied into buf, or NULL when absent. */
const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t cap);

/* Frees what out owns. */
void http_resp_free(struct http_resp *r);

/* Raw TCP client to 127.0.0.1:port; -1 on failure. */
int tcp_connect(int port);

/* Sends all of buf; 0 or -1. */
int tcp_send(int fd, const char *buf, size_t len);

/* Reads until the peer closes, timeout_ms passes, or max bytes; returns a malloc'd
 * NUL-terminated buffer (never NULL) and its length in *len. */
char *tcp_read_all(int fd, int timeout_ms, size_t *len);

/* Closes with RST instead of FIN. */
void tcp_reset(int fd);

/* Counts open file descriptors of process pid (from /proc), -1 on failure. */
int proc_fd_count(pid_t pid);

/* What most suites run against: the stub, a conf naming its ports, and the gateway on it. A
 * suite keeps one in a static (zeroed) and calls the functions below from .init and .fini. */
struct fixture {
    struct proc stub;
    struct proc gw;
    char conf_path[128]; /* "" until written */
    char record[256];    /* the stub's record file, "" when it does not record */
};

/* Starts the stub with one --listen per spec ("0:test"...), recording to a fresh temporary
 * f->record when record is true. Fails the test (cr_assert, with the log path) if it does not
 * start. */
void fixture_stub_start(struct fixture *f, const char *const *specs, size_t n_specs, bool record);

/* Writes the conf made from conf_fmt and its arguments (the stub's ports: f->stub.ports[i]) to
 * f->conf_path and starts the gateway on it. Fails the test (cr_assert, with the log path) if
 * either step fails. */
void fixture_gateway_start(struct fixture *f, const char *conf_fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stops the gateway (SIGTERM, 10 s) and the stub (SIGTERM, 5 s), removes the conf and record
 * files, and expects (cr_expect, with the log path) both to exit 0: under ASan, exit 0 also
 * means nothing leaked. */
void fixture_stop(struct fixture *f);

#endif
