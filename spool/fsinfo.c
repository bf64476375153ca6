/* The spool's questions to the file system: is it local, how much room is left, make the
 * directory. */
#include "spool/fsinfo.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

/* f_type values (linux/magic.h and the file systems' own headers) of file systems that live
 * on another host. */
static const struct {
    unsigned long magic;
    const char *name;
} remote[] = {
    {0x6969, "NFS"},        {0x517b, "SMB"},      {0xff534d42, "CIFS"},  {0xfe534d42, "SMB2"},
    {0x00c36400, "Ceph"},   {0x01021997, "9p"},   {0x5346414f, "AFS"},   {0x6b414653, "kAFS"},
    {0x0bd00bd0, "Lustre"}, {0x47504653, "GPFS"}, {0x013111a8, "IBRIX"},
};

int tg_spool_fs_check(const char *dir, char *err, size_t errlen)
{
    struct statfs st;

    if (statfs(dir, &st) == -1) {
        if (errno == ENOENT) {
            return TG_ENOTFOUND;
        }
        snprintf(err, errlen, "%s: cannot tell its file system: %m", dir);
        return TG_EINVAL;
    }
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        if ((unsigned long)st.f_type == remote[i].magic) {
            snprintf(err, errlen,
                     "%s is on %s, a network file system: the spool needs a local disk "
                     "(SQLite's WAL locks and fsync promises hold on one host only)",
                     dir, remote[i].name);
            return TG_EINVAL;
        }
    }
    return TG_OK;
}

uint64_t tg_spool_fs_free(const char *dir)
{
    struct statvfs st;

    if (statvfs(dir, &st) == -1) {
        return UINT64_MAX;
    }
    return (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
}

void tg_spool_dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

int tg_spool_mkdirs(const char *dir, char *err, size_t errlen)
{
    char p[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(p)) {
        snprintf(err, errlen, "%s: bad directory", dir);
        return TG_EINVAL;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) == -1 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create the spool directory: %m", p);
            return TG_EINVAL;
        }
        p[i] = c;
    }
    return TG_OK;
}
