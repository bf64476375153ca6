#ifndef TG_SPOOL_SEAL_H
#define TG_SPOOL_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

/* Sealing at rest (the only OpenSSL user): AES-256-GCM for what the spool keeps of a submission
 * (its body, the headers it stores, the answer it may replay), HMAC-SHA256 for what only needs
 * comparing (the request's fingerprint, the key scope, the ordering key), and the random bytes
 * both need. Every function may run on any thread. */

#define TG_SEAL_KEY_BYTES 32
#define TG_SEAL_MAC_BYTES 32
/* A sealed blob: version (1), key id (4, big-endian), nonce (12), ciphertext, tag (16). */
#define TG_SEAL_OVERHEAD (1 + 4 + 12 + 16)

struct tg_seal_key {
    uint32_t id; /* the first 4 bytes of SHA-256(bytes): names the key inside each blob */
    uint8_t bytes[TG_SEAL_KEY_BYTES];
};

/* The keys a spool may read with: keys[0] seals, the others (old_key_files) only open what was
 * sealed under them before a rotation. */
struct tg_seal_keys {
    struct tg_seal_key *keys; /* owned */
    size_t n;
};

/* One part of what an HMAC covers; each is length-prefixed, so ("ab","c") != ("a","bc"). */
struct tg_seal_part {
    const void *p;
    size_t len;
};

/* Parses a key file's text (len bytes): exactly 32 raw bytes, or 64 hex digits with an optional
 * trailing newline (what `openssl rand -hex 32` writes). Sets key->id. TG_OK or TG_EINVAL. */
int tg_seal_key_parse(const char *text, size_t len, struct tg_seal_key *key);

/* Fills key with 32 fresh random bytes and its id. TG_OK or TG_EINTERNAL. */
int tg_seal_key_new(struct tg_seal_key *key);

/* Writes key as 64 lower-case hex digits and a newline into out (at least 66 bytes, NUL-ended). */
void tg_seal_key_hex(const struct tg_seal_key *key, char *out);

/* Seals plain[0..len) under key, binding aad (not stored): out receives len + TG_SEAL_OVERHEAD
 * bytes. The nonce is random per call. TG_OK or TG_EINTERNAL. */
int tg_seal(const struct tg_seal_key *key, const void *aad, size_t aad_len, const void *plain,
            size_t len, uint8_t *out) TG_MUST_CHECK;

/* Opens sealed[0..len) with the key it names among keys and the same aad: out (room for len -
 * TG_SEAL_OVERHEAD bytes) receives the plain text, *out_len its length. TG_OK; TG_ENOTFOUND when
 * the key is not among keys (retired: what it sealed is gone for good); TG_EINVAL when the blob
 * is malformed, altered, or was sealed with another aad. */
int tg_seal_open(const struct tg_seal_keys *keys, const void *aad, size_t aad_len,
                 const uint8_t *sealed, size_t len, uint8_t *out, size_t *out_len) TG_MUST_CHECK;

/* The key id a sealed blob names, or 0 when it is too short to name one. */
uint32_t tg_seal_blob_key_id(const uint8_t *sealed, size_t len);

/* HMAC-SHA256 under key over the length-prefixed parts. TG_OK or TG_EINTERNAL. */
int tg_seal_mac(const uint8_t key[TG_SEAL_KEY_BYTES], const struct tg_seal_part *parts, size_t n,
                uint8_t out[TG_SEAL_MAC_BYTES]) TG_MUST_CHECK;

/* n random bytes from OpenSSL's generator. TG_OK or TG_EINTERNAL. */
int tg_seal_random(void *buf, size_t n) TG_MUST_CHECK;

/* Zeroes n bytes in a way the compiler keeps (keys on their way out). */
void tg_seal_wipe(void *p, size_t n);

/* Frees keys->keys after wiping them; keys is left empty. */
void tg_seal_keys_cleanup(struct tg_seal_keys *keys);

#endif
