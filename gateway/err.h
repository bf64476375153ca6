#ifndef TG_GATEWAY_ERR_H
#define TG_GATEWAY_ERR_H

/* One small return-code vocabulary: 0 is success, failures are negative. */
enum tg_err {
    TG_OK = 0,
    TG_ENOMEM = -1,
    TG_EINVAL = -2,     /* client input or conf */
    TG_ENOROUTE = -3,   /* no route for the path */
    TG_EUPSTREAM = -4,  /* upstream refused, reset or answered garbage */
    TG_ETIMEDOUT = -5,  /* deadline passed */
    TG_ECANCELED = -6,  /* client left */
    TG_ETOOBIG = -7,    /* body over a limit */
    TG_EMETHOD = -8,    /* path known, method not allowed */
    TG_EOVERLOAD = -9,  /* shedding load or draining */
    TG_ENOTIMPL = -10,  /* feature the request asks for is not supported */
    TG_EINTERNAL = -11, /* a bug or a library failure */
};

#define TG_MUST_CHECK     __attribute__((warn_unused_result))
#define TG_PRINTF(fa, va) __attribute__((format(printf, fa, va)))
#define TG_FREE(p)  \
    do {            \
        free(p);    \
        (p) = NULL; \
    } while (0)

/* Short, stable, lower-case text for an error code; never NULL. */
const char *tg_strerror(int err);

/* The only place that maps a failure kind to an HTTP status (499 for a client that left). */
int tg_err_http_status(int err);

#endif
