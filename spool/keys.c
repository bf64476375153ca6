/* The spool's key files: strict permissions, the current key and the old ones after a rotation,
 * and the first key of a new spool. */
#include "spool/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/seal.h"

#define KEY_FILE_MAX 128 /* 64 hex digits and a newline, with room to say "too long" */

/* Writes a new key to path (which must not exist), mode 0600, synced with its directory. */
static int create_key(const char *path, char *err, size_t errlen)
{
    struct tg_seal_key key;
    char hex[2 * TG_SEAL_KEY_BYTES + 2];
    int fd;
    int rc = TG_EINVAL;

    if (tg_seal_key_new(&key) != TG_OK) {
        snprintf(err, errlen, "%s: cannot make a key", path);
        return TG_EINVAL;
    }
    tg_seal_key_hex(&key, hex);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        snprintf(err, errlen, "%s: cannot create the key file: %m", path);
        goto out;
    }
    if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) == -1) {
        snprintf(err, errlen, "%s: cannot write the key file: %m", path);
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    rc = TG_OK;
out:
    tg_seal_wipe(&key, sizeof(key));
    tg_seal_wipe(hex, sizeof(hex));
    return rc;
}

/* Reads one key file into key after checking its mode. */
static int read_key(const char *path, struct tg_seal_key *key, char *err, size_t errlen)
{
    char text[KEY_FILE_MAX];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = TG_EINVAL;

    if (fd == -1) {
        snprintf(err, errlen, "%s: cannot open the key file: %m", path);
        return TG_EINVAL;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: mode %03o lets group or others at the key: chmod 600 (refused to start)",
                 path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    n = read(fd, text, sizeof(text));
    if (n < 0 || tg_seal_key_parse(text, (size_t)n, key) != TG_OK) {
        snprintf(err, errlen, "%s: expected 32 raw bytes or 64 hex digits", path);
        goto out;
    }
    rc = TG_OK;
out:
    tg_seal_wipe(text, sizeof(text));
    close(fd);
    return rc;
}

int tg_spool_keys_load(const char *key_file, const char *const *old, size_t n_old, bool create,
                       struct tg_seal_keys *out, char *err, size_t errlen)
{
    int rc;

    out->n = 0;
    out->keys = calloc(n_old + 1, sizeof(*out->keys));
    if (out->keys == NULL) {
        snprintf(err, errlen, "%s: out of memory", key_file);
        return TG_EINVAL;
    }
    if (create && access(key_file, F_OK) == -1 && errno == ENOENT) {
        rc = create_key(key_file, err, errlen);
        if (rc != TG_OK) {
            goto fail;
        }
    }
    for (size_t i = 0; i <= n_old; i++) {
        const char *path = i == 0 ? key_file : old[i - 1];
        rc = read_key(path, &out->keys[i], err, errlen);
        if (rc != TG_OK) {
            goto fail;
        }
        for (size_t j = 0; j < i; j++) {
            if (out->keys[j].id == out->keys[i].id) {
                snprintf(err, errlen, "%s: the same key as %s", path,
                         j == 0 ? key_file : old[j - 1]);
                goto fail;
            }
        }
        out->n = i + 1;
    }
    return TG_OK;
fail:
    tg_seal_keys_cleanup(out);
    return TG_EINVAL;
}
