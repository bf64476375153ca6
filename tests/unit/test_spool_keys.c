/* Unit tests for spool/keys.c: key files with loose modes are refused, a new spool gets a key
 * of its own, old keys load after the current one, and a key listed twice is refused. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "spool/keys.h"
#include "spool/seal.h"
#include "tests/support/unit/tmpdir.h"

static void setup(void)
{
    tmpdir_make("keys");
}

TestSuite(keys, .init = setup, .fini = tmpdir_remove, .timeout = 10);

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    cr_assert(ge(int, fd, 0));
    cr_assert(eq(sz, (size_t)write(fd, text, strlen(text)), strlen(text)));
    close(fd);
    cr_assert(eq(int, chmod(path, mode), 0));
}

#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define HEX_B "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n"

Test(keys, group_or_other_access_is_refused)
{
    const char *k = tmpdir_path("key");
    struct tg_seal_keys keys;
    char err[256];

    write_file(k, HEX_A, 0640);
    cr_expect(eq(int, tg_spool_keys_load(k, NULL, 0, false, &keys, err, sizeof(err)), TG_EINVAL));
    cr_expect(not(zero(ptr, strstr(err, "chmod 600"))), "%s", err);
    cr_expect(eq(sz, keys.n, 0));
    write_file(k, HEX_A, 0604);
    cr_expect(eq(int, tg_spool_keys_load(k, NULL, 0, false, &keys, err, sizeof(err)), TG_EINVAL));
    write_file(k, HEX_A, 0600);
    cr_assert(eq(int, tg_spool_keys_load(k, NULL, 0, false, &keys, err, sizeof(err)), TG_OK), "%s",
              err);
    cr_expect(eq(sz, keys.n, 1));
    cr_expect(eq(int, keys.keys[0].bytes[31], 0x1f));
    tg_seal_keys_cleanup(&keys);
}

Test(keys, a_missing_key_is_made_only_when_asked)
{
    const char *k = tmpdir_path("new-key");
    struct tg_seal_keys keys;
    struct tg_seal_keys again;
    struct stat st;
    char err[256];

    cr_expect(eq(int, tg_spool_keys_load(k, NULL, 0, false, &keys, err, sizeof(err)), TG_EINVAL));
    cr_assert(eq(int, tg_spool_keys_load(k, NULL, 0, true, &keys, err, sizeof(err)), TG_OK), "%s",
              err);
    cr_assert(eq(int, stat(k, &st), 0));
    cr_expect(eq(int, (int)(st.st_mode & 0777), 0600));
    cr_assert(eq(int, tg_spool_keys_load(k, NULL, 0, true, &again, err, sizeof(err)), TG_OK));
    cr_expect(eq(u32, again.keys[0].id, keys.keys[0].id), "an existing key is never replaced");
    tg_seal_keys_cleanup(&keys);
    tg_seal_keys_cleanup(&again);
}

Test(keys, old_keys_follow_the_current_one_and_repeats_are_refused)
{
    const char *cur = tmpdir_path("cur");
    const char *old = tmpdir_path("old");
    const char *dup = tmpdir_path("dup");
    const char *olds[] = {old};
    const char *dups[] = {dup};
    struct tg_seal_keys keys;
    char err[256];

    write_file(cur, HEX_B, 0600);
    write_file(old, HEX_A, 0400);
    write_file(dup, HEX_B, 0600);
    cr_assert(eq(int, tg_spool_keys_load(cur, olds, 1, false, &keys, err, sizeof(err)), TG_OK),
              "%s", err);
    cr_expect(eq(sz, keys.n, 2));
    cr_expect(eq(int, keys.keys[0].bytes[0], 0x1f), "the current key seals");
    cr_expect(eq(int, keys.keys[1].bytes[0], 0x00));
    tg_seal_keys_cleanup(&keys);
    cr_expect(eq(int, tg_spool_keys_load(cur, dups, 1, false, &keys, err, sizeof(err)), TG_EINVAL));
    cr_expect(not(zero(ptr, strstr(err, "the same key"))), "%s", err);
}
