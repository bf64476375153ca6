#ifndef TG_TESTS_SUPPORT_PROC_H
#define TG_TESTS_SUPPORT_PROC_H

/* Child processes a test starts (the gateway under test, the stub upstream): spawning with the
 * output in a log file, waiting for their listening lines, signals, stopping, and reading the
 * log back. Everything here runs on the test's own thread. */

#include <stddef.h>
#include <sys/types.h>

#define PROC_PORTS_MAX 8

/* A child process the test started. Its stdout and stderr go to log_path, which failure
 * messages print. */
struct proc {
    pid_t pid; /* 0 once it was reaped */
    char log_path[256];
    int ports[PROC_PORTS_MAX]; /* from its {"event":"listening","port":N} lines, in order */
    size_t n_ports;
    int admin_port; /* the gateway's admin listener ("admin":"host:N" on its listening line), 0 */
};

/* Forks and execs argv (argv[0] a path, NULL-terminated) with stdout and stderr in a new
 * temporary log file, then waits up to 5 s until the log holds n_listening listening lines and
 * fills p->ports from them. Returns 0, or -1 when the child could not start, exited, or did not
 * listen in time (its log says why). The child gets SIGTERM if the test process dies. */
int proc_spawn(struct proc *p, const char *const *argv, size_t n_listening);

/* proc_spawn with env ("NAME=value" strings, NULL-terminated, may be NULL) added to the
 * test's own environment for the child. */
int proc_spawn_env(struct proc *p, const char *const *argv, const char *const *env,
                   size_t n_listening);

/* Starts the test build of the gateway (TG_HOOKS_BINARY: crash points, injected faults) on
 * conf_path with --port 0 --admin-port 0 and env as proc_spawn_env adds it; waits for its listening
 * line. 0 or -1 (the log says why). */
int gateway_start_hooks(struct proc *p, const char *conf_path, const char *const *env);

/* Starts the gateway (TG_BINARY) on conf_path with --port 0 --admin-port 0 plus extra args
 * (NULL-terminated list, may be NULL) and waits up to 5 s for its listening line. Returns 0 or -1
 * (the log says why). */
int gateway_start(struct proc *p, const char *conf_path, const char *const *extra);

/* Sends sig and waits up to timeout_ms for the exit. Returns the exit status (0..255), 128+sig
 * when killed by a signal, or -1 when it did not exit in time (then it is killed). Idempotent:
 * -1 once the process was reaped. */
int proc_stop(struct proc *p, int sig, int timeout_ms);

/* Waits up to timeout_ms for p to exit by itself. Returns its status as proc_stop does, or -1
 * when it still runs. */
int proc_wait(struct proc *p, int timeout_ms);

/* Sends a signal without waiting. */
void proc_signal(const struct proc *p, int sig);

/* The whole log (malloc'd, NUL-terminated; caller frees), or NULL when it cannot be read. */
char *proc_log(const struct proc *p);

/* Counts lines of the process log containing every one of the given substrings
 * (NULL-terminated). */
int proc_log_count(const struct proc *p, const char *const *needles);

/* proc_log_count once it reached want, or when timeout_ms passed: processes write their lines
 * when they get to it, which may be after the client got its answer. */
int proc_log_wait(const struct proc *p, const char *const *needles, int want, int timeout_ms);

/* Counts open file descriptors of process pid (from /proc), -1 on failure. */
int proc_fd_count(pid_t pid);

#endif
