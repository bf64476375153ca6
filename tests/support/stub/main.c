#include "tests/support/stub/stub.h"

/* tg-stub: the demo ePRO services (questionnaire, patient, history) for `make run` and docker,
 * and a scriptable, misbehaving HTTP/1.1 upstream for the integration tests.
 *
 * One thread per connection (small stacks, so thousands of idle keep-alive connections are
 * cheap), blocking sockets, plain HTTP/1.1. Query parameters on any path script the answer
 * (status, delay, hang, trickle, reset, body_bytes of a pattern sent chunked, paced or cut,
 * ...); /_sink reads a body of any size without keeping it (paced by read_rate) and answers its
 * length and hash; GET /_stub/stats counts requests and body bytes; GET /_stub/behave?PARAMS
 * gives every later request on that listener those parameters (a target of a pool misbehaving
 * while the others serve; no query ends it). --record writes one JSON line per connection event so
 * tests can assert what the upstream saw, on which port and when (CLOCK_MONOTONIC microseconds).
 * Only libc and pthreads: the binary must build wherever the gateway builds. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define STUB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang's spelling */
#define STUB_ASAN 1
#endif
#endif
#ifdef STUB_ASAN
#define THREAD_STACK ((size_t)512 * 1024) /* ASan's redzones need room */
#else
#define THREAD_STACK ((size_t)64 * 1024) /* big buffers live on the heap */
#endif

const char *const service_names[] = {"test", "questionnaire", "patient", "history", "collector"};

struct stub_state stub = {
    .host = "127.0.0.1",
    .record_fd = -1,
    .out_lock = PTHREAD_MUTEX_INITIALIZER,
    .conn_lock = PTHREAD_MUTEX_INITIALIZER,
    .behave_lock = PTHREAD_MUTEX_INITIALIZER,
    .conn_gone = PTHREAD_COND_INITIALIZER,
};

static bool parse_listen(const char *arg)
{
    struct listener *l = &stub.ls[stub.nls];
    char *end;
    long port;

    if (stub.nls == MAX_LISTENERS) {
        return false;
    }
    errno = 0;
    port = strtol(arg, &end, 10);
    if (end == arg || errno != 0 || port < 0 || port > 65535 || (*end != '\0' && *end != ':')) {
        return false;
    }
    l->port = (int)port;
    l->svc = SVC_TEST;
    if (*end == ':') {
        size_t i = 0;
        while (i < N_SERVICES && strcmp(end + 1, service_names[i]) != 0) {
            i++;
        }
        if (i == N_SERVICES) {
            return false;
        }
        l->svc = (enum service)i;
    }
    stub.nls++;
    return true;
}

static bool parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            return false;
        }
        if (strcmp(opt, "--listen") == 0) {
            if (!parse_listen(val)) {
                return false;
            }
        } else if (strcmp(opt, "--record") == 0) {
            stub.record_path = val;
        } else if (strcmp(opt, "--host") == 0) {
            stub.host = val;
        } else {
            return false;
        }
    }
    return stub.nls > 0;
}

static bool open_listener(struct listener *l)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->port)};
    socklen_t len = sizeof(sa);
    int one = 1;

    if (inet_pton(AF_INET, stub.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "tg-stub: --host must be an IPv4 address, not '%s'\n", stub.host);
        return false;
    }
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd == -1 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(l->fd, 4096) == -1 ||
        getsockname(l->fd, (struct sockaddr *)&sa, &len) == -1) {
        char what[128];
        snprintf(what, sizeof(what), "tg-stub: cannot listen on %s:%d", stub.host, l->port);
        perror(what);
        return false;
    }
    l->port = ntohs(sa.sin_port);
    return true;
}

/* Accepts until SIGTERM or SIGINT arrives on sfd. */
static void accept_loop(int sfd)
{
    struct pollfd pfd[MAX_LISTENERS + 1];

    for (size_t i = 0; i < stub.nls; i++) {
        pfd[i] = (struct pollfd){.fd = stub.ls[i].fd, .events = POLLIN};
    }
    pfd[stub.nls] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (;;) {
        if (poll(pfd, stub.nls + 1, -1) == -1 && errno != EINTR) {
            perror("tg-stub: poll");
            return;
        }
        if (pfd[stub.nls].revents != 0) {
            return;
        }
        for (size_t i = 0; i < stub.nls; i++) {
            int fd;
            while (pfd[i].revents != 0 &&
                   (fd = accept4(stub.ls[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                conn_start(fd, i);
            }
            if (pfd[i].revents != 0 && (errno == EMFILE || errno == ENFILE)) {
                poll(NULL, 0, 10); /* out of fds: back off instead of spinning */
            }
        }
    }
}

/* Blocks SIGTERM/SIGINT in every thread and returns a signalfd for them; ignores SIGPIPE. */
static int setup_process(void)
{
    struct rlimit rl;
    sigset_t set;
    struct sigaction ign = {.sa_handler = SIG_IGN};

    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one fd per connection: thousands of them */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < sizeof(stub.pattern); i++) {
        stub.pattern[i] = (char)('a' + i % 26);
    }
    pthread_attr_init(&stub.attr);
    pthread_attr_setdetachstate(&stub.attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&stub.attr, THREAD_STACK);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int main(int argc, char **argv)
{
    int sfd = -1, rc = 1;

    for (size_t i = 0; i < MAX_LISTENERS; i++) {
        stub.ls[i].fd = -1;
    }
    if (!parse_args(argc, argv)) {
        fprintf(stderr, "usage: tg-stub --listen PORT[:SERVICE] [--listen ...] [--record FILE]"
                        " [--host 127.0.0.1]\n  SERVICE: test (default), questionnaire, patient,"
                        " history, collector\n");
        return 2;
    }
    sfd = setup_process();
    if (sfd == -1) {
        perror("tg-stub: signalfd");
        goto out;
    }
    if (stub.record_path != NULL &&
        (stub.record_fd =
             open(stub.record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) == -1) {
        perror(stub.record_path);
        goto out;
    }
    for (size_t i = 0; i < stub.nls; i++) {
        if (!open_listener(&stub.ls[i])) {
            goto out;
        }
    }
    for (size_t i = 0; i < stub.nls; i++) {
        struct sbuf s = {0};
        sbuf_addf(&s, "{\"event\":\"listening\",\"port\":%d,\"service\":\"%s\"}", stub.ls[i].port,
                  service_names[stub.ls[i].svc]);
        emit(STDOUT_FILENO, &s);
    }
    accept_loop(sfd);
    atomic_store(&stub.stopping, true);
    for (size_t i = 0; i < stub.nls; i++) {
        close(stub.ls[i].fd);
        stub.ls[i].fd = -1;
    }
    stop_connections();
    rc = 0;
out:
    for (size_t i = 0; i < stub.nls; i++) {
        if (stub.ls[i].fd >= 0) {
            close(stub.ls[i].fd);
        }
    }
    if (stub.record_fd >= 0) {
        close(stub.record_fd);
    }
    for (size_t i = 0; i < stub.nls; i++) {
        free(stub.ls[i].behave);
    }
    if (sfd >= 0) {
        close(sfd);
    }
    pthread_attr_destroy(&stub.attr);
    ledger_free();
    return rc;
}
