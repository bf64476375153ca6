#ifndef TG_SPOOL_FSINFO_H
#define TG_SPOOL_FSINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

/* What the spool asks of the file system it lives on. Any thread. */

/* Refuses a network file system under dir (NFS, SMB/CIFS, Ceph, 9p, AFS, Lustre, GPFS): SQLite's
 * WAL needs the locks and the shared memory of one host, and an fsync there does not promise what a
 * local one does. TG_OK; TG_EINVAL with "DIR: why" in err; TG_ENOTFOUND when dir does not exist
 * (nothing to judge yet). */
int tg_spool_fs_check(const char *dir, char *err, size_t errlen);

/* Bytes an unprivileged writer may still use under dir, or UINT64_MAX when it cannot be told. */
uint64_t tg_spool_fs_free(const char *dir);

/* Writes the directory part of path ("." when it has none) into out (cap bytes). */
void tg_spool_dir_of(const char *path, char *out, size_t cap);

/* Creates dir and its missing parents, mode 0700. TG_OK or TG_EINVAL with err. */
int tg_spool_mkdirs(const char *dir, char *err, size_t errlen);

#endif
