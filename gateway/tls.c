/* TLS versions, ciphers and the front end's certificate, with GnuTLS. */
#include "gateway/tls.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#define CHAIN_MAX 16

/* One certificate chain and its key. Never freed while the process serves: a handshake on a
 * worker may have just read it when a reload swaps it out. */
struct creds {
    gnutls_pcert_st chain[CHAIN_MAX];
    unsigned n;
    gnutls_privkey_t key;
    struct creds *older; /* the pairs set before it (main thread only) */
};

static _Atomic(struct creds *) current;

int tg_tls_priorities(const char *base, unsigned min_version, char *out, size_t cap, char *err,
                      size_t errlen)
{
    gnutls_priority_t p = NULL;
    const char *where = NULL;
    int n = snprintf(out, cap, "%s:-VERS-ALL:+VERS-TLS1.3%s", base,
                     min_version <= 12 ? ":+VERS-TLS1.2" : "");
    int rc;

    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "priority string too long");
        return TG_EINVAL;
    }
    rc = gnutls_priority_init(&p, out, &where);
    if (rc != GNUTLS_E_SUCCESS) {
        snprintf(err, errlen, "GnuTLS refuses the priority string near \"%.40s\": %s",
                 where != NULL ? where : "", gnutls_strerror(rc));
        return TG_EINVAL;
    }
    gnutls_priority_deinit(p);
    return TG_OK;
}

static void creds_free(struct creds *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        gnutls_pcert_deinit(&c->chain[i]);
    }
    if (c->key != NULL) {
        gnutls_privkey_deinit(c->key);
    }
    free(c);
}

/* The key signs and the certificate's public key verifies: they are a pair. */
static bool key_fits(const struct creds *c)
{
    static const unsigned char probe[] = "tracegate key check";
    gnutls_datum_t data = {(unsigned char *)probe, sizeof(probe) - 1};
    gnutls_datum_t sig = {NULL, 0};
    int pk = gnutls_privkey_get_pk_algorithm(c->key, NULL);
    gnutls_sign_algorithm_t algo = gnutls_pk_to_sign((gnutls_pk_algorithm_t)pk, GNUTLS_DIG_SHA256);
    bool ok;

    if (gnutls_privkey_sign_data(c->key, GNUTLS_DIG_SHA256, 0, &data, &sig) < 0) {
        return false;
    }
    ok = gnutls_pubkey_verify_data2(c->chain[0].pubkey, algo, 0, &data, &sig) >= 0;
    gnutls_free(sig.data);
    return ok;
}

int tg_tls_set_credentials(const char *cert, size_t cert_len, const char *key, size_t key_len,
                           char *err, size_t errlen)
{
    struct creds *c = calloc(1, sizeof(*c));
    gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)cert_len};
    gnutls_datum_t kd = {(unsigned char *)key, (unsigned)key_len};
    int rc;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    c->n = CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(c->chain, &c->n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        c->n = 0;
        snprintf(err, errlen, "certificate: %s", gnutls_strerror(rc));
        goto fail;
    }
    rc = gnutls_privkey_init(&c->key);
    if (rc >= 0) {
        rc = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    }
    if (rc < 0) {
        snprintf(err, errlen, "key: %s", gnutls_strerror(rc));
        goto fail;
    }
    if (!key_fits(c)) {
        snprintf(err, errlen, "the key does not belong to the certificate");
        goto fail;
    }
    c->older = atomic_load(&current);
    atomic_store(&current, c);
    return TG_OK;
fail:
    creds_free(c);
    return TG_EINVAL;
}

/* GnuTLS asks for the server's certificate in each handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    struct creds *c = atomic_load(&current);

    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (c == NULL) {
        return -1;
    }
    *pcert = c->chain;
    *pcert_length = c->n;
    *pkey = c->key;
    return 0;
}

tg_tls_fn *tg_tls_cert_callback(void)
{
    gnutls_certificate_retrieve_function2 *fn = retrieve;

    return (tg_tls_fn *)fn;
}

void tg_tls_cleanup(void)
{
    struct creds *c = atomic_exchange(&current, NULL);

    while (c != NULL) {
        struct creds *older = c->older;
        creds_free(c);
        c = older;
    }
}
