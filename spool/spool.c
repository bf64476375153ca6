/* The spool's life and its keys: start (file system, directory, keys, the index key, recovery),
 * stop, and the sealing and MACs that callers do on their own threads. The threads are in
 * spool/threads.c. */
#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/conf.h"
#include "gateway/log.h"
#include "gateway/stats.h"
#include "gateway/trace_context.h"
#include "spool/fsinfo.h"
#include "spool/keys.h"
#include "spool/seal.h"
#include "spool/spool_internal.h"

#define INDEX_KEY "index_key" /* the meta entry: the MAC key, sealed under the current key */
#define DIR_MAX   4096

static _Atomic(struct tg_spool *) current;

struct tg_spool *tg_spool_current(void)
{
    return atomic_load(&current);
}

int64_t tg_spool_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tg_spool_time(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    if (ms < 0 || gmtime_r(&s, &tm) == NULL) {
        snprintf(out, cap, "1970-01-01T00:00:00.000Z");
        return;
    }
    n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

void tg_spool_new_id(char out[TG_SPOOL_ID_LEN + 1])
{
    uint8_t raw[16];

    tg_trace_new_uuid(raw, out); /* a v4 UUID from the per-thread ChaCha20 generator */
}

/* The associated data of a sealed blob: the record and the part, so that a blob copied to
 * another record or field does not open. */
static size_t aad_of(char *out, size_t cap, const char *id, const char *what)
{
    int n = snprintf(out, cap, "tracegate:%s:%s", id, what);

    return n < 0 || (size_t)n >= cap ? cap - 1 : (size_t)n;
}

int tg_spool_seal(const struct tg_spool *sp, const char *id, const char *what, const void *plain,
                  size_t len, struct tg_spool_blob *out)
{
    char aad[128];
    size_t alen = aad_of(aad, sizeof(aad), id, what);

    out->len = len + TG_SEAL_OVERHEAD;
    out->p = malloc(out->len);
    if (out->p == NULL) {
        out->len = 0;
        return TG_ENOMEM;
    }
    if (tg_seal(&sp->keys.keys[0], aad, alen, plain, len, out->p) != TG_OK) {
        tg_spool_blob_cleanup(out);
        return TG_EINTERNAL;
    }
    return TG_OK;
}

int tg_spool_unseal(const struct tg_spool *sp, const char *id, const char *what,
                    const uint8_t *blob, size_t len, uint8_t **out, size_t *out_len)
{
    char aad[128];
    size_t alen = aad_of(aad, sizeof(aad), id, what);
    int rc;

    *out = NULL;
    *out_len = 0;
    if (len < TG_SEAL_OVERHEAD) {
        return TG_EINVAL;
    }
    *out = malloc(len - TG_SEAL_OVERHEAD + 1);
    if (*out == NULL) {
        return TG_ENOMEM;
    }
    rc = tg_seal_open(&sp->keys, aad, alen, blob, len, *out, out_len);
    if (rc != TG_OK) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[*out_len] = '\0';
    return TG_OK;
}

int tg_spool_mac(const struct tg_spool *sp, const struct tg_seal_part *parts, size_t n,
                 uint8_t out[TG_SPOOL_MAC_LEN])
{
    return tg_seal_mac(sp->index_key, parts, n, out);
}

bool tg_spool_accepting(const struct tg_spool *sp)
{
    return atomic_load(&tg_stats.durable.health) == TG_SPOOL_OK && !atomic_load(&sp->failed);
}

/* ---- start and stop --------------------------------------------------------------------- */

/* Stores a new index key, or reseals the one there under the current key after a rotation. */
static int put_index_key(struct tg_spool *sp)
{
    struct tg_spool_blob sealed = {0};
    int rc = tg_spool_seal(sp, "-", INDEX_KEY, sp->index_key, sizeof(sp->index_key), &sealed);

    rc = rc != TG_OK ? rc : sp->ops->begin(sp->wstore);
    rc = rc != TG_OK ? rc : sp->ops->meta_put(sp->wstore, INDEX_KEY, sealed.p, sealed.len);
    rc = rc != TG_OK ? rc : sp->ops->commit(sp->wstore);
    if (rc != TG_OK) {
        sp->ops->rollback(sp->wstore);
    }
    tg_spool_blob_cleanup(&sealed);
    return rc;
}

/* The MAC key: made with a new spool, then kept sealed in it, so that the same patient or key
 * gives the same MAC after a key rotation. Opening it proves the key files fit this spool. */
static int load_index_key(struct tg_spool *sp, char *err, size_t errlen)
{
    struct tg_spool_blob sealed = {0};
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = sp->ops->meta_get(sp->wstore, INDEX_KEY, &sealed);

    if (rc == TG_ENOTFOUND) {
        rc = tg_seal_random(sp->index_key, sizeof(sp->index_key));
        rc = rc != TG_OK ? rc : put_index_key(sp);
        if (rc != TG_OK) {
            snprintf(err, errlen, "%s: cannot store the spool's index key", sp->path);
        }
        return rc;
    }
    rc = rc != TG_OK ? rc : tg_spool_unseal(sp, "-", INDEX_KEY, sealed.p, sealed.len, &plain, &n);
    if (rc != TG_OK || n != sizeof(sp->index_key)) {
        snprintf(err, errlen,
                 "%s: none of the key files opens this spool (key_file and old_key_files must "
                 "hold the key it was sealed with)",
                 sp->path);
        tg_spool_blob_cleanup(&sealed);
        free(plain);
        return TG_EINVAL;
    }
    memcpy(sp->index_key, plain, n);
    tg_seal_wipe(plain, n);
    free(plain);
    if (tg_seal_blob_key_id(sealed.p, sealed.len) != sp->keys.keys[0].id) {
        rc = put_index_key(sp); /* rotated: from now on the new key opens it */
        tg_log(TG_LOG_INFO, NULL, "spool.key_rotated", "index key resealed under the new key");
    }
    tg_spool_blob_cleanup(&sealed);
    return rc;
}

/* The directory: local, existing (made when missing). *fresh: no spool file there yet. */
static int prepare_dir(struct tg_spool *sp, bool *fresh, char *err, size_t errlen)
{
    int rc = tg_spool_fs_check(sp->dir, err, errlen);

    if (rc == TG_ENOTFOUND) {
        rc = tg_spool_mkdirs(sp->dir, err, errlen);
        rc = rc != TG_OK ? rc : tg_spool_fs_check(sp->dir, err, errlen);
    }
    if (rc != TG_OK) {
        return TG_EINVAL;
    }
    struct stat st;
    bool exists = stat(sp->path, &st) == 0;

    /* Empty counts as new: a start that failed right after making the file made nothing else. */
    *fresh = !exists || st.st_size == 0;
    if (!exists) {
        /* Made here so that it starts 0600: SQLite gives its WAL and shared memory files the
         * database file's mode, and none of them is for group or others. */
        int fd = open(sp->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd == -1) {
            snprintf(err, errlen, "%s: cannot create the spool: %m", sp->path);
            return TG_EINVAL;
        }
        close(fd);
    }
    return TG_OK;
}

static int recover(struct tg_spool *sp, bool (*resend_ok)(const char *route, void *arg), void *arg,
                   char *err, size_t errlen)
{
    unsigned requeued = 0;
    unsigned unknown = 0;
    int rc = sp->ops->begin(sp->wstore);

    rc = rc != TG_OK
             ? rc
             : sp->ops->recover(sp->wstore, resend_ok, arg, tg_spool_now_ms(), &requeued, &unknown);
    rc = rc != TG_OK ? rc : sp->ops->commit(sp->wstore);
    if (rc != TG_OK) {
        sp->ops->rollback(sp->wstore);
        snprintf(err, errlen, "%s: cannot recover the spool", sp->path);
        return TG_EINVAL;
    }
    if (requeued > 0 || unknown > 0) {
        struct tg_logline l;
        tg_logline_begin(&l, unknown > 0 ? TG_LOG_WARN : TG_LOG_INFO, NULL, "spool.recovered");
        tg_logline_int(&l, "requeued", requeued);
        tg_logline_int(&l, "unknown", unknown);
        tg_logline_end(&l);
    }
    return TG_OK;
}

static int copy_settings(struct tg_spool *sp, const struct tg_spool_conf *sc)
{
    char dir[DIR_MAX];

    tg_spool_dir_of(sc->path, dir, sizeof(dir));
    sp->path = strdup(sc->path);
    sp->dir = strdup(dir);
    sp->min_free_bytes = sc->min_free_bytes;
    sp->key_ttl_s = sc->key_ttl_s;
    sp->response_ttl_s = sc->response_ttl_s;
    sp->group_commit_us = sc->group_commit_us;
    sp->group_commit_max = sc->group_commit_max;
    sp->ops = &tg_store_sqlite;
    tg_spool_queue_init(&sp->wq);
    tg_spool_queue_init(&sp->rq);
    return sp->path != NULL && sp->dir != NULL ? TG_OK : TG_ENOMEM;
}

static int open_all(struct tg_spool *sp, const struct tg_spool_conf *sc,
                    bool (*resend_ok)(const char *route, void *arg), void *arg, char *err,
                    size_t errlen)
{
    struct tg_store_options wo = {sc->path, false, sc->sync_full, sc->max_bytes};
    struct tg_store_options ro = {sc->path, true, sc->sync_full, 0};
    bool fresh = false;
    int rc = prepare_dir(sp, &fresh, err, errlen);

    rc = rc != TG_OK ? rc
                     : tg_spool_keys_load(sc->key_file, (const char *const *)sc->old_key_files,
                                          sc->n_old_key_files, fresh, &sp->keys, err, errlen);
    rc = rc != TG_OK ? rc : sp->ops->open(&wo, &sp->wstore, err, errlen);
    rc = rc != TG_OK ? rc : load_index_key(sp, err, errlen);
    rc = rc != TG_OK ? rc : recover(sp, resend_ok, arg, err, errlen);
    rc = rc != TG_OK ? rc : sp->ops->open(&ro, &sp->rstore, err, errlen);
    return rc;
}

static void spool_free(struct tg_spool *sp)
{
    if (sp == NULL) {
        return;
    }
    sp->ops->close(sp->rstore);
    sp->ops->close(sp->wstore);
    tg_seal_keys_cleanup(&sp->keys);
    tg_seal_wipe(sp->index_key, sizeof(sp->index_key));
    tg_spool_queue_cleanup(&sp->wq);
    tg_spool_queue_cleanup(&sp->rq);
    free(sp->path);
    free(sp->dir);
    free(sp);
}

int tg_spool_start(const struct tg_spool_conf *sc, bool (*resend_ok)(const char *route, void *arg),
                   void *arg, void (*on_failed)(void), struct tg_spool **out, char *err,
                   size_t errlen)
{
    struct tg_spool *sp = calloc(1, sizeof(*sp));
    int rc;

    *out = NULL;
    err[0] = '\0';
    if (sp == NULL || copy_settings(sp, sc) != TG_OK) {
        snprintf(err, errlen, "%s: out of memory", sc->path);
        spool_free(sp);
        return TG_EINVAL;
    }
    atomic_init(&sp->failed, false);
    atomic_init(&sp->counts_dirty, true);
    sp->on_failed = on_failed;
    rc = open_all(sp, sc, resend_ok, arg, err, errlen);
    atomic_store(&tg_stats.durable.health, TG_SPOOL_OK);
    rc = rc != TG_OK ? rc : tg_spool_threads_start(sp);
    if (rc != TG_OK) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s: cannot start the spool", sc->path);
        }
        atomic_store(&tg_stats.durable.health, TG_SPOOL_OFF);
        spool_free(sp);
        return TG_EINVAL;
    }
    if (!sc->sync_full) {
        tg_log(TG_LOG_WARN, NULL, "spool.synchronous",
               "synchronous is \"normal\": a power loss may lose submissions already answered");
    }
    atomic_store(&current, sp);
    *out = sp;
    return TG_OK;
}

void tg_spool_stop(struct tg_spool *sp)
{
    if (sp == NULL) {
        return;
    }
    tg_spool_threads_stop(sp);
    atomic_store(&current, NULL);
    spool_free(sp);
    tg_log(TG_LOG_INFO, NULL, "spool.stopped", "spool closed");
}
