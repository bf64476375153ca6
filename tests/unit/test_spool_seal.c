/* Unit tests for spool/seal.c: what is sealed opens only with its key and its aad, a changed
 * byte is refused, rotated keys still open what they sealed, a retired key is told apart, and the
 * MAC separates its parts. */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "spool/seal.h"

TestSuite(seal, .timeout = 10);

static const char plain[] = "{\"answers\":[3,1,4],\"patient\":\"p-17\"}";

static struct tg_seal_key key_of(unsigned char fill)
{
    struct tg_seal_key k;
    char raw[TG_SEAL_KEY_BYTES];

    memset(raw, fill, sizeof(raw));
    cr_assert(eq(int, tg_seal_key_parse(raw, sizeof(raw), &k), TG_OK));
    return k;
}

Test(seal, round_trip_with_the_same_key_and_aad)
{
    struct tg_seal_key k = key_of(7);
    struct tg_seal_keys keys = {&k, 1};
    uint8_t sealed[sizeof(plain) + TG_SEAL_OVERHEAD];
    uint8_t out[sizeof(plain)];
    size_t n = 0;

    cr_assert(eq(int, tg_seal(&k, "id-1", 4, plain, sizeof(plain), sealed), TG_OK));
    cr_expect(memmem(sealed, sizeof(sealed), "patient", 7) == NULL, "plain text in the blob");
    cr_assert(eq(int, tg_seal_open(&keys, "id-1", 4, sealed, sizeof(sealed), out, &n), TG_OK));
    cr_assert(eq(sz, n, sizeof(plain)));
    cr_expect(memcmp(out, plain, n) == 0);
    cr_expect(eq(u32, tg_seal_blob_key_id(sealed, sizeof(sealed)), k.id));
}

Test(seal, two_seals_of_the_same_text_differ)
{
    struct tg_seal_key k = key_of(7);
    uint8_t a[sizeof(plain) + TG_SEAL_OVERHEAD];
    uint8_t b[sizeof(plain) + TG_SEAL_OVERHEAD];

    cr_assert(eq(int, tg_seal(&k, "", 0, plain, sizeof(plain), a), TG_OK));
    cr_assert(eq(int, tg_seal(&k, "", 0, plain, sizeof(plain), b), TG_OK));
    cr_expect(memcmp(a, b, sizeof(a)) != 0, "the nonce must be fresh per seal");
}

Test(seal, another_aad_or_a_changed_byte_is_refused)
{
    struct tg_seal_key k = key_of(7);
    struct tg_seal_keys keys = {&k, 1};
    uint8_t sealed[sizeof(plain) + TG_SEAL_OVERHEAD];
    uint8_t out[sizeof(plain)];
    size_t n = 0;

    cr_assert(eq(int, tg_seal(&k, "id-1", 4, plain, sizeof(plain), sealed), TG_OK));
    cr_expect(eq(int, tg_seal_open(&keys, "id-2", 4, sealed, sizeof(sealed), out, &n), TG_EINVAL));
    for (size_t i = 5; i < sizeof(sealed); i += 7) {
        sealed[i] ^= 1;
        cr_expect(
            eq(int, tg_seal_open(&keys, "id-1", 4, sealed, sizeof(sealed), out, &n), TG_EINVAL),
            "byte %zu changed and still opened", i);
        sealed[i] ^= 1;
    }
    cr_expect(eq(int, tg_seal_open(&keys, "id-1", 4, sealed, 10, out, &n), TG_EINVAL));
}

Test(seal, old_keys_open_what_they_sealed_and_a_retired_key_is_named)
{
    struct tg_seal_key old = key_of(1);
    struct tg_seal_key cur = key_of(2);
    struct tg_seal_key both[2] = {cur, old};
    struct tg_seal_keys rotated = {both, 2};
    struct tg_seal_keys retired = {&cur, 1};
    uint8_t sealed[sizeof(plain) + TG_SEAL_OVERHEAD];
    uint8_t out[sizeof(plain)];
    size_t n = 0;

    cr_assert(ne(u32, old.id, cur.id));
    cr_assert(eq(int, tg_seal(&old, "a", 1, plain, sizeof(plain), sealed), TG_OK));
    cr_expect(eq(int, tg_seal_open(&rotated, "a", 1, sealed, sizeof(sealed), out, &n), TG_OK));
    cr_expect(
        eq(int, tg_seal_open(&retired, "a", 1, sealed, sizeof(sealed), out, &n), TG_ENOTFOUND));
}

Test(seal, key_files_take_raw_bytes_or_hex_and_nothing_else)
{
    struct tg_seal_key k;
    struct tg_seal_key raw = key_of(0xab);
    char hex[2 * TG_SEAL_KEY_BYTES + 2];

    tg_seal_key_hex(&raw, hex);
    cr_assert(eq(int, tg_seal_key_parse(hex, strlen(hex), &k), TG_OK));
    cr_expect(memcmp(k.bytes, raw.bytes, TG_SEAL_KEY_BYTES) == 0);
    cr_expect(eq(u32, k.id, raw.id));
    cr_expect(eq(int, tg_seal_key_parse(hex, strlen(hex) - 1, &k), TG_OK), "without newline");
    cr_expect(eq(int, tg_seal_key_parse(hex, strlen(hex) - 2, &k), TG_EINVAL), "63 digits");
    hex[3] = 'g';
    cr_expect(eq(int, tg_seal_key_parse(hex, strlen(hex), &k), TG_EINVAL), "not hex");
    cr_expect(eq(int, tg_seal_key_parse("short", 5, &k), TG_EINVAL));
}

Test(seal, mac_depends_on_key_and_on_where_parts_split)
{
    uint8_t k1[TG_SEAL_KEY_BYTES] = {1};
    uint8_t k2[TG_SEAL_KEY_BYTES] = {2};
    uint8_t a[TG_SEAL_MAC_BYTES], b[TG_SEAL_MAC_BYTES], c[TG_SEAL_MAC_BYTES];
    struct tg_seal_part ab_c[] = {{"ab", 2}, {"c", 1}};
    struct tg_seal_part a_bc[] = {{"a", 1}, {"bc", 2}};

    cr_assert(eq(int, tg_seal_mac(k1, ab_c, 2, a), TG_OK));
    cr_assert(eq(int, tg_seal_mac(k1, a_bc, 2, b), TG_OK));
    cr_assert(eq(int, tg_seal_mac(k2, ab_c, 2, c), TG_OK));
    cr_expect(memcmp(a, b, sizeof(a)) != 0);
    cr_expect(memcmp(a, c, sizeof(a)) != 0);
    cr_assert(eq(int, tg_seal_mac(k1, ab_c, 2, b), TG_OK));
    cr_expect(memcmp(a, b, sizeof(a)) == 0, "the same input gives the same MAC");
}
