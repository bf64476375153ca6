#ifndef TG_SPOOL_SQLITE_VFS_H
#define TG_SPOOL_SQLITE_VFS_H

#include "gateway/err.h"

/* The SQLite VFS the spool opens its file with: the system's own ("unix"), with every sync
 * timed into the fsync histogram (gateway/stats.h), and, in the test build only, failed on
 * demand (gateway/testhook.h, TRACEGATE_TEST_FAIL_FSYNC_AT). */

#define TG_SPOOL_VFS "tracegate"

/* Registers the VFS once per process (later calls do nothing). TG_OK or TG_EINTERNAL. Any
 * thread. */
int tg_spool_vfs_register(void) TG_MUST_CHECK;

#endif
