#ifndef TG_GATEWAY_TLS_H
#define TG_GATEWAY_TLS_H

/* The front end's TLS policy and certificate, with GnuTLS (the library libmicrohttpd uses): the
 * only GnuTLS user. The certificate is handed to every handshake by a callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK), so a reload swaps it for new handshakes while connections
 * already up keep theirs: nothing is dropped. */

#include <stddef.h>

#include "gateway/err.h"

#define TG_TLS_PRIORITY_MAX 1024

/* A function pointer of GnuTLS's type, untyped here so that no other file needs its header. */
typedef void tg_tls_fn(void);

/* Writes into out (cap bytes) the GnuTLS priority string for base (a GnuTLS priority string,
 * e.g. "NORMAL" or "SECURE256:-CHACHA20-POLY1305") with every protocol version below
 * min_version (12 for TLS 1.2, 13 for TLS 1.3) removed, and checks that GnuTLS accepts it.
 * TG_OK, or TG_EINVAL with err saying what GnuTLS refused. Any thread. */
int tg_tls_priorities(const char *base, unsigned min_version, char *out, size_t cap, char *err,
                      size_t errlen);

/* Makes the PEM certificate chain and key (cert_len and key_len bytes) the ones new handshakes
 * get, after checking that the key belongs to the certificate. The previous pair stays in memory
 * until tg_tls_cleanup (a handshake may still hold it). TG_OK, or TG_EINVAL with err set (the
 * previous pair stays in use). Main thread. */
int tg_tls_set_credentials(const char *cert, size_t cert_len, const char *key, size_t key_len,
                           char *err, size_t errlen);

/* The handshake callback for MHD_OPTION_HTTPS_CERT_CALLBACK. */
tg_tls_fn *tg_tls_cert_callback(void);

/* Frees every pair ever set. After the servers stopped. */
void tg_tls_cleanup(void);

#endif
