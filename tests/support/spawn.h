#ifndef TG_TESTS_SUPPORT_SPAWN_H
#define TG_TESTS_SUPPORT_SPAWN_H

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

/* Writes text to a new temporary conf file; path receives its name (cap >= 64). 0 or -1. */
int conf_write(char *path, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fresh temporary file name (not created) for stub records. */
void temp_path(char *path, size_t cap, const char *tag);

/* Every record line of the stub so far, as a JSON array (caller decrefs). */
json_t *stub_records(const char *record_path);

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

#endif
