#include "gateway/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

int tg_sha256_hex(const void *p, size_t n, char out[TG_SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    out[0] = '\0';
    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len * 2 != TG_SHA256_HEX_LEN) {
        return TG_EINTERNAL;
    }
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[TG_SHA256_HEX_LEN] = '\0';
    return TG_OK;
}

const char *tg_digest_lib_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}
