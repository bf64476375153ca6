#include "tests/support/proc.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/clock.h"
#include "tests/support/read_file.h"

/* The test's environment plus extra (may be NULL), in a malloc'd array of borrowed strings. */
static char **env_with(const char *const *extra)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n] != NULL) {
        n++;
    }
    while (extra != NULL && extra[k] != NULL) {
        k++;
    }
    env = calloc(n + k + 1, sizeof(*env));
    if (env == NULL) {
        return NULL;
    }
    memcpy(env, environ, n * sizeof(*env));
    if (k > 0) {
        memcpy(env + n, extra, k * sizeof(*env));
    }
    return env;
}

/* Forks and execs argv (with env added) with stdout and stderr in a new temporary log file. */
static int spawn(struct proc *p, const char *const *argv, const char *const *extra_env)
{
    /* Built before the fork: the child of a threaded test may only exec. */
    char **env = env_with(extra_env);
    int fd;

    if (env == NULL) {
        return -1;
    }

    memset(p->ports, 0, sizeof(p->ports));
    p->n_ports = 0;
    p->admin_port = 0;
    snprintf(p->log_path, sizeof(p->log_path), "/tmp/tg-test-XXXXXX");
    fd = mkstemp(p->log_path);
    if (fd == -1) {
        free(env);
        return -1;
    }
    p->pid = fork();
    if (p->pid == -1) {
        close(fd);
        free(env);
        return -1;
    }
    if (p->pid == 0) {
        /* A test that crashes or times out never reaches its teardown: the child goes with it
         * rather than outlive the run. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    close(fd);
    free(env);
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
            const char *eol = strchr(s, '\n');
            const char *admin = strstr(s, "\"admin\":\"");
            if (port != NULL && n < PROC_PORTS_MAX) {
                p->ports[n++] = (int)strtol(port + 7, NULL, 10);
            }
            if (admin != NULL && (eol == NULL || admin < eol)) {
                const char *colon = strchr(admin + 9, '"');
                while (colon != NULL && colon > admin && *colon != ':') {
                    colon--;
                }
                p->admin_port = colon != NULL ? (int)strtol(colon + 1, NULL, 10) : 0;
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

int proc_spawn(struct proc *p, const char *const *argv, size_t n_listening)
{
    return proc_spawn_env(p, argv, NULL, n_listening);
}

int proc_spawn_env(struct proc *p, const char *const *argv, const char *const *env,
                   size_t n_listening)
{
    if (spawn(p, argv, env) != 0) {
        return -1;
    }
    return wait_listening(p, n_listening);
}

int gateway_start_hooks(struct proc *p, const char *conf_path, const char *const *env)
{
    const char *argv[] = {TG_HOOKS_BINARY, "-c", conf_path, "--port", "0",
                          "--admin-port",  "0",  NULL};

    return proc_spawn_env(p, argv, env, 1);
}

int gateway_start(struct proc *p, const char *conf_path, const char *const *extra)
{
    /* Both ports from the kernel: suites run side by side with other gateways on this host. */
    const char *argv[32] = {TG_BINARY, "-c", conf_path, "--port", "0", "--admin-port", "0"};
    size_t n = 7;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return proc_spawn(p, argv, 1);
}

int proc_wait(struct proc *p, int timeout_ms)
{
    uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
    int status;

    while (p->pid > 0) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (now_us() >= end) {
            return -1;
        }
        usleep(5000);
    }
    return -1;
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
    return read_file(p->log_path);
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
