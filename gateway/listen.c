#include "gateway/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int tg_listen_probe(const char *host, unsigned port, char *why, size_t cap)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int one = 1, fd, rc = TG_OK;

    if (port == 0) {
        return TG_OK;
    }
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        snprintf(why, cap, "bad address %s", host);
        return TG_EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(why, cap, "socket: %m");
        return TG_EINVAL;
    }
    /* SO_REUSEADDR so that connections of a previous run in TIME_WAIT do not count; a
     * listening socket still does. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
        if (errno == EADDRINUSE) {
            snprintf(why, cap, "already in use by another process");
        } else {
            snprintf(why, cap, "cannot bind: %m");
        }
        rc = TG_EINVAL;
    }
    close(fd);
    return rc;
}
