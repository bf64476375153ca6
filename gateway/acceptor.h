#ifndef TG_GATEWAY_ACCEPTOR_H
#define TG_GATEWAY_ACCEPTOR_H

/* The TLS port's own listener: it accepts connections and looks at each one's first byte
 * before the TLS library does. A TLS handshake (a record of type 22) goes on to the HTTP
 * server; anything else is plain HTTP sent to the HTTPS port, answered with the gateway's
 * JSON 400 in clear text and closed, as NGINX does. A connection that sends nothing within the
 * client timeout is closed. Loop thread only. */

#include <stdbool.h>
#include <sys/socket.h>

struct tg_loop;
struct tg_acceptor;

/* Takes fd (a TLS connection from peer sa, len bytes) over. */
typedef void tg_acceptor_adopt_fn(void *arg, int fd, const struct sockaddr *sa, socklen_t len);

/* Listens on sa (SO_REUSEPORT, like the other workers) and starts accepting on loop. NULL on
 * failure (logged). */
struct tg_acceptor *tg_acceptor_start(struct tg_loop *loop, const struct sockaddr *sa,
                                      socklen_t len, unsigned timeout_ms, unsigned max_pending,
                                      tg_acceptor_adopt_fn *adopt, void *arg);

/* The bound port. */
unsigned tg_acceptor_port(const struct tg_acceptor *a);

/* Stops listening; connections already in the kernel's backlog are accepted first. */
void tg_acceptor_quiesce(struct tg_acceptor *a);

/* Closes the listener and every connection not yet handed over, and frees a. NULL is a no-op. */
void tg_acceptor_stop(struct tg_acceptor *a);

#endif
