#ifndef TG_GATEWAY_BUILD_H
#define TG_GATEWAY_BUILD_H

/* What this binary is: its version, the commit it was built from, and the versions of the
 * libraries it runs on (the ones loaded, not the headers it was compiled against). For
 * --version, tracegate_build_info, the admin /info answer and the OTLP resource. */
struct tg_build {
    const char *version;       /* "0.1.0" */
    const char *commit;        /* short commit id, "-dirty" when built from a changed tree, or
                                * "unknown" outside a git checkout */
    const char *libmicrohttpd; /* "0.9.75" */
    const char *libcurl;       /* "7.88.1" */
    const char *jansson;       /* "2.14" */
    const char *openssl;       /* "OpenSSL 3.0.17 1 Jul 2025" */
};

/* Static strings; any thread. */
void tg_build_get(struct tg_build *b);

#endif
