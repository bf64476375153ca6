/* Sealing at rest with OpenSSL: AES-256-GCM, HMAC-SHA256, SHA-256 key ids, random bytes. */
#include "spool/seal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define VERSION   1
#define NONCE_LEN 12
#define TAG_LEN   16
#define HEAD_LEN  (1 + 4 + NONCE_LEN)

/* The algorithms, fetched from OpenSSL's providers once per process: a fetch takes locks and a
 * lookup, too much to pay on every seal. Never freed (process lifetime). */
static pthread_once_t fetched = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher;
static EVP_MAC *hmac;

static void fetch(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static uint32_t key_id_of(const uint8_t bytes[TG_SEAL_KEY_BYTES])
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    uint32_t id;

    SHA256(bytes, TG_SEAL_KEY_BYTES, d);
    id = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    return id != 0 ? id : 1; /* 0 means "no key" to tg_seal_blob_key_id */
}

int tg_seal_key_parse(const char *text, size_t len, struct tg_seal_key *key)
{
    char hex[2 * TG_SEAL_KEY_BYTES + 1];
    unsigned char *raw;
    long n = 0;

    if (len == TG_SEAL_KEY_BYTES) {
        memcpy(key->bytes, text, TG_SEAL_KEY_BYTES);
        key->id = key_id_of(key->bytes);
        return TG_OK;
    }
    if (len > 0 && text[len - 1] == '\n') {
        len--;
    }
    if (len != (size_t)2 * TG_SEAL_KEY_BYTES || memchr(text, ':', len) != NULL) {
        return TG_EINVAL;
    }
    memcpy(hex, text, len);
    hex[len] = '\0';
    raw = OPENSSL_hexstr2buf(hex, &n);
    tg_seal_wipe(hex, sizeof(hex));
    if (raw == NULL || n != TG_SEAL_KEY_BYTES) {
        OPENSSL_clear_free(raw, raw == NULL ? 0 : (size_t)n);
        return TG_EINVAL;
    }
    memcpy(key->bytes, raw, TG_SEAL_KEY_BYTES);
    OPENSSL_clear_free(raw, (size_t)n);
    key->id = key_id_of(key->bytes);
    return TG_OK;
}

int tg_seal_key_new(struct tg_seal_key *key)
{
    if (tg_seal_random(key->bytes, TG_SEAL_KEY_BYTES) != TG_OK) {
        return TG_EINTERNAL;
    }
    key->id = key_id_of(key->bytes);
    return TG_OK;
}

void tg_seal_key_hex(const struct tg_seal_key *key, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < TG_SEAL_KEY_BYTES; i++) {
        out[2 * i] = digits[key->bytes[i] >> 4];
        out[2 * i + 1] = digits[key->bytes[i] & 15];
    }
    out[(size_t)2 * TG_SEAL_KEY_BYTES] = '\n';
    out[(size_t)2 * TG_SEAL_KEY_BYTES + 1] = '\0';
}

/* What one GCM pass works on. */
struct gcm_job {
    const uint8_t *key;
    const uint8_t *nonce;
    const void *aad;
    size_t aad_len;
    const uint8_t *in;
    size_t len;
    uint8_t *out;
    uint8_t *tag; /* written when encrypting, checked when decrypting */
};

/* One GCM pass: encrypt (enc 1) or decrypt (enc 0) j->in into j->out. */
static int gcm(int enc, const struct gcm_job *j)
{
    const uint8_t *key = j->key;
    const uint8_t *nonce = j->nonce;
    const void *aad = j->aad;
    size_t aad_len = j->aad_len;
    const uint8_t *in = j->in;
    size_t len = j->len;
    uint8_t *out = j->out;
    uint8_t *tag = j->tag;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0;
    int ok;

    pthread_once(&fetched, fetch);
    if (ctx == NULL || gcm_cipher == NULL || len > INT32_MAX || aad_len > INT32_MAX) {
        EVP_CIPHER_CTX_free(ctx);
        return TG_EINTERNAL;
    }
    ok = EVP_CipherInit_ex2(ctx, gcm_cipher, NULL, NULL, enc, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
         EVP_CipherInit_ex2(ctx, NULL, key, nonce, enc, NULL) == 1 &&
         (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) == 1) &&
         (len == 0 || EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1) &&
         (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1);
    /* Decrypting, the final call is where a wrong tag shows. */
    ok = ok && EVP_CipherFinal_ex(ctx, out + (len > 0 ? outl : 0), &outl) == 1;
    ok = ok && (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? TG_OK : enc ? TG_EINTERNAL : TG_EINVAL;
}

int tg_seal(const struct tg_seal_key *key, const void *aad, size_t aad_len, const void *plain,
            size_t len, uint8_t *out)
{
    out[0] = VERSION;
    out[1] = (uint8_t)(key->id >> 24);
    out[2] = (uint8_t)(key->id >> 16);
    out[3] = (uint8_t)(key->id >> 8);
    out[4] = (uint8_t)key->id;
    if (tg_seal_random(out + 5, NONCE_LEN) != TG_OK) {
        return TG_EINTERNAL;
    }
    struct gcm_job j = {key->bytes,          out + 5, aad, aad_len, plain, len, out + HEAD_LEN,
                        out + HEAD_LEN + len};

    return gcm(1, &j);
}

uint32_t tg_seal_blob_key_id(const uint8_t *sealed, size_t len)
{
    if (len < TG_SEAL_OVERHEAD || sealed[0] != VERSION) {
        return 0;
    }
    return (uint32_t)sealed[1] << 24 | (uint32_t)sealed[2] << 16 | (uint32_t)sealed[3] << 8 |
           sealed[4];
}

int tg_seal_open(const struct tg_seal_keys *keys, const void *aad, size_t aad_len,
                 const uint8_t *sealed, size_t len, uint8_t *out, size_t *out_len)
{
    uint32_t id = tg_seal_blob_key_id(sealed, len);
    uint8_t tag[TAG_LEN];
    size_t n;

    if (id == 0) {
        return TG_EINVAL;
    }
    n = len - TG_SEAL_OVERHEAD;
    memcpy(tag, sealed + HEAD_LEN + n, TAG_LEN);
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->keys[i].id == id) {
            struct gcm_job j = {keys->keys[i].bytes, sealed + 5, aad, aad_len,
                                sealed + HEAD_LEN,   n,          out, tag};
            int rc = gcm(0, &j);
            if (rc != TG_OK) {
                tg_seal_wipe(out, n); /* never hand on what failed its tag */
                return TG_EINVAL;
            }
            *out_len = n;
            return TG_OK;
        }
    }
    return TG_ENOTFOUND;
}

int tg_seal_mac(const uint8_t key[TG_SEAL_KEY_BYTES], const struct tg_seal_part *parts, size_t n,
                uint8_t out[TG_SEAL_MAC_BYTES])
{
    EVP_MAC_CTX *ctx;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outl = 0;
    int ok;

    pthread_once(&fetched, fetch);
    ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    ok = ctx != NULL && EVP_MAC_init(ctx, key, TG_SEAL_KEY_BYTES, params) == 1;

    for (size_t i = 0; ok && i < n; i++) {
        uint8_t len8[8];
        uint64_t l = parts[i].len;
        for (int b = 0; b < 8; b++) {
            len8[b] = (uint8_t)(l >> (56 - 8 * b));
        }
        ok = EVP_MAC_update(ctx, len8, sizeof(len8)) == 1 &&
             (parts[i].len == 0 || EVP_MAC_update(ctx, parts[i].p, parts[i].len) == 1);
    }
    ok = ok && EVP_MAC_final(ctx, out, &outl, TG_SEAL_MAC_BYTES) == 1 && outl == TG_SEAL_MAC_BYTES;
    EVP_MAC_CTX_free(ctx);
    return ok ? TG_OK : TG_EINTERNAL;
}

int tg_seal_random(void *buf, size_t n)
{
    return n <= INT32_MAX && RAND_bytes(buf, (int)n) == 1 ? TG_OK : TG_EINTERNAL;
}

void tg_seal_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

void tg_seal_keys_cleanup(struct tg_seal_keys *keys)
{
    if (keys->keys != NULL) {
        tg_seal_wipe(keys->keys, keys->n * sizeof(*keys->keys));
    }
    free(keys->keys);
    keys->keys = NULL;
    keys->n = 0;
}
