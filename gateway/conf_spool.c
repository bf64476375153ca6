/* The top-level "spool" block of the conf (gateway/conf.h): where durable routes keep what they
 * accepted, how hard it is synced, how big it may grow, the keys that seal it, how long what is
 * done is remembered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/jsonpos.h"

#define OLD_KEYS_MAX 8
#define DAY_S        86400u
#define TIB          ((size_t)1 << 40)

static const char *const spool_keys[] = {
    "path",
    "synchronous",
    "max_bytes",
    "min_free_bytes",
    "key_file",
    "old_key_files",
    "key_ttl_s",
    "response_ttl_s",
    "group_commit_us",
    "group_commit_max",
    NULL,
};

void tg_conf_spool_free(struct tg_spool_conf *sc)
{
    if (sc == NULL) {
        return;
    }
    free(sc->path);
    free(sc->key_file);
    tg_conf_strs_free(sc->old_key_files, sc->n_old_key_files);
    free(sc);
}

static int load_sync(struct tg_conf_ctx *ctx, const json_t *sp, struct tg_spool_conf *sc)
{
    char quoted[96];
    const char *sync = "full";
    int rc = tg_conf_get_str(ctx, sp, "spool", "synchronous", false, &sync);

    if (rc != TG_OK) {
        return rc;
    }
    if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
        return tg_conf_error(ctx, "spool.synchronous",
                             "unknown synchronous %s: expected \"full\" (every accepted "
                             "submission is on disk before the answer) or \"normal\"",
                             tg_jpos_quote(quoted, sizeof(quoted), sync));
    }
    sc->sync_full = strcmp(sync, "full") == 0;
    return TG_OK;
}

/* The files: the spool, its key (default: the spool's path + ".key") and the old keys. */
static int load_files(struct tg_conf_ctx *ctx, const json_t *sp, struct tg_spool_conf *sc)
{
    const char *path = NULL;
    const char *key = NULL;
    char **old = NULL;
    size_t n_old = 0;
    int rc = tg_conf_get_str(ctx, sp, "spool", "path", true, &path);

    rc = rc != TG_OK ? rc : tg_conf_get_str(ctx, sp, "spool", "key_file", false, &key);
    rc = rc != TG_OK
             ? rc
             : tg_conf_get_strs(ctx, sp, "spool", "old_key_files", OLD_KEYS_MAX, &old, &n_old);
    if (rc != TG_OK || path == NULL) {
        return rc;
    }
    rc = tg_conf_resolve_path(ctx->file, path, &sc->path);
    if (rc == TG_OK && key != NULL) {
        rc = tg_conf_resolve_path(ctx->file, key, &sc->key_file);
    } else if (rc == TG_OK) {
        size_t n = strlen(sc->path) + sizeof(".key");
        sc->key_file = malloc(n);
        rc = sc->key_file == NULL ? TG_ENOMEM : TG_OK;
        if (rc == TG_OK) {
            snprintf(sc->key_file, n, "%s.key", sc->path);
        }
    }
    sc->old_key_files = calloc(n_old + 1, sizeof(*sc->old_key_files));
    rc = rc == TG_OK && sc->old_key_files == NULL ? TG_ENOMEM : rc;
    for (size_t i = 0; rc == TG_OK && i < n_old; i++) {
        rc = tg_conf_resolve_path(ctx->file, old[i], &sc->old_key_files[i]);
        sc->n_old_key_files += rc == TG_OK;
    }
    tg_conf_strs_free(old, n_old);
    return rc;
}

static int load_limits(struct tg_conf_ctx *ctx, const json_t *sp, struct tg_spool_conf *sc)
{
    int rc = tg_conf_get_size(ctx, sp, "spool", "max_bytes", 65536, TIB, &sc->max_bytes);

    rc = rc != TG_OK
             ? rc
             : tg_conf_get_size(ctx, sp, "spool", "min_free_bytes", 0, TIB, &sc->min_free_bytes);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, sp, "spool", "key_ttl_s", 60, 3650 * DAY_S,
                                            &sc->key_ttl_s);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, sp, "spool", "response_ttl_s", 0, 3650 * DAY_S,
                                            &sc->response_ttl_s);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, sp, "spool", "group_commit_us", 0, 100000,
                                            &sc->group_commit_us);
    rc = rc != TG_OK ? rc
                     : tg_conf_get_unsigned(ctx, sp, "spool", "group_commit_max", 1, 4096,
                                            &sc->group_commit_max);
    if (rc == TG_OK && sc->response_ttl_s > sc->key_ttl_s) {
        return tg_conf_error(ctx, "spool.response_ttl_s",
                             "response_ttl_s (%u) is longer than key_ttl_s (%u): an answer cannot "
                             "outlive its record",
                             sc->response_ttl_s, sc->key_ttl_s);
    }
    return rc;
}

int tg_conf_load_spool(struct tg_conf_ctx *ctx, const json_t *root, struct tg_conf *conf)
{
    json_t *sp = NULL;
    struct tg_spool_conf *sc;
    int rc = tg_conf_get_json(ctx, root, "", "spool", JSON_OBJECT, false, &sp);

    if (rc != TG_OK || sp == NULL) {
        return rc;
    }
    rc = tg_conf_check_keys(ctx, sp, "spool", spool_keys);
    if (rc != TG_OK) {
        return rc;
    }
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        return TG_ENOMEM;
    }
    conf->spool = sc; /* freed with the conf from here on */
    sc->sync_full = true;
    sc->max_bytes = (size_t)1 << 30;
    sc->min_free_bytes = (size_t)64 << 20;
    sc->key_ttl_s = 30 * DAY_S;
    sc->response_ttl_s = DAY_S;
    sc->group_commit_max = 64;
    rc = load_files(ctx, sp, sc);
    rc = rc != TG_OK ? rc : load_sync(ctx, sp, sc);
    return rc != TG_OK ? rc : load_limits(ctx, sp, sc);
}
