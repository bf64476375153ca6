/* The test hooks of gateway/testhook.h. Compiled twice: into the gateway without
 * TG_TEST_HOOKS (every hook a no-op) and into the test build with it. */
#include "gateway/testhook.h"

#ifdef TG_TEST_HOOKS

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 64

static char crash_name[NAME_MAX_LEN];
static long crash_at;
static atomic_long crash_hits;
static long fsync_fail_at;
static atomic_long fsyncs;
static bool ack_early;

static long parse_count(const char *s)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    return errno != 0 || end == s || *end != '\0' || v < 1 ? 0 : v;
}

void tg_testhook_init(void)
{
    /* Before any thread starts (the contract). NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *crash = getenv("TRACEGATE_TEST_CRASH_AT");
    /* NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *fsync = getenv("TRACEGATE_TEST_FAIL_FSYNC_AT");
    /* NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *ack = getenv("TRACEGATE_TEST_ACK_BEFORE_COMMIT");
    const char *colon;

    crash_name[0] = '\0';
    crash_at = 0;
    atomic_store(&crash_hits, 0);
    if (crash != NULL && crash[0] != '\0') {
        colon = strchr(crash, ':');
        size_t n = colon != NULL ? (size_t)(colon - crash) : strlen(crash);
        if (n < sizeof(crash_name)) {
            memcpy(crash_name, crash, n);
            crash_name[n] = '\0';
            crash_at = colon != NULL ? parse_count(colon + 1) : 1;
        }
    }
    fsync_fail_at = fsync != NULL ? parse_count(fsync) : 0;
    atomic_store(&fsyncs, 0);
    ack_early = ack != NULL && strcmp(ack, "1") == 0;
}

void tg_testhook_crash_point(const char *name)
{
    if (crash_at == 0 || strcmp(name, crash_name) != 0) {
        return;
    }
    if (atomic_fetch_add(&crash_hits, 1) + 1 == crash_at) {
        /* What a power cut or kill -9 leaves: no handler, no flush, no atexit. */
        fprintf(stderr, "testhook: crash point %s\n", name);
        kill(getpid(), SIGKILL);
        _exit(137);
    }
}

bool tg_testhook_fail_fsync(void)
{
    return fsync_fail_at > 0 && atomic_fetch_add(&fsyncs, 1) + 1 >= fsync_fail_at;
}

bool tg_testhook_ack_before_commit(void)
{
    return ack_early;
}

#else

void tg_testhook_init(void)
{
}

void tg_testhook_crash_point(const char *name)
{
    (void)name;
}

bool tg_testhook_fail_fsync(void)
{
    return false;
}

bool tg_testhook_ack_before_commit(void)
{
    return false;
}

#endif
