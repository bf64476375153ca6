/* The audit file: a queue the workers fill, a writer thread that empties it in batches. */
#include "gateway/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/buf.h"
#include "gateway/log.h"

#define BATCH_WAKE ((size_t)256 * 1024) /* wake the writer early past this much */

struct tg_audit_sink {
    int fd;
    unsigned flush_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tg_buf queue; /* under mu */
    bool stop;           /* under mu */
    _Atomic uint64_t dropped;
};

static void write_batch(struct tg_audit_sink *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(s->fd, p, n);
        if (k == -1 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            tg_log(TG_LOG_ERROR, NULL, "audit.error", "cannot write the audit file: %m");
            return;
        }
        p += k;
        n -= (size_t)k;
    }
    /* A record is kept once it is on the disk, not in the page cache. */
    fdatasync(s->fd);
}

static void *writer_main(void *arg)
{
    struct tg_audit_sink *s = arg;
    struct tg_buf mine = {.limit = TG_AUDIT_QUEUE_MAX};
    bool stop = false;

    while (!stop) {
        struct timespec until;
        struct tg_buf swap;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(s->flush_ms % 1000) * 1000000L;
        until.tv_sec += (time_t)(s->flush_ms / 1000) + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&s->mu);
        while (!s->stop && s->queue.len < BATCH_WAKE &&
               pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
        }
        stop = s->stop;
        swap = s->queue; /* take the queue, leave the empty buffer: no copy under the lock */
        s->queue = mine;
        mine = swap;
        pthread_mutex_unlock(&s->mu);
        if (mine.len > 0) {
            write_batch(s, mine.data, mine.len);
            mine.len = 0;
        }
    }
    tg_buf_cleanup(&mine);
    return NULL;
}

int tg_audit_sink_open(const char *path, unsigned flush_ms, struct tg_audit_sink **out)
{
    struct tg_audit_sink *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL) {
        return TG_ENOMEM;
    }
    s->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (s->fd == -1) {
        tg_log(TG_LOG_ERROR, NULL, "audit.error", "cannot open the audit file %s: %m", path);
        free(s);
        return TG_EINVAL;
    }
    s->flush_ms = flush_ms > 0 ? flush_ms : 1;
    s->queue.limit = TG_AUDIT_QUEUE_MAX;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        close(s->fd);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return TG_ENOMEM;
    }
    *out = s;
    return TG_OK;
}

void tg_audit_sink_write(struct tg_audit_sink *s, const char *line, size_t len)
{
    bool wake;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = tg_buf_append(&s->queue, line, len);
    if (rc == TG_OK) {
        rc = tg_buf_append(&s->queue, "\n", 1);
        if (rc != TG_OK) {
            s->queue.len -= len; /* never half a record */
        }
    }
    wake = s->queue.len >= BATCH_WAKE;
    pthread_mutex_unlock(&s->mu);
    if (rc != TG_OK) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    }
    if (wake) {
        pthread_cond_signal(&s->cv);
    }
}

uint64_t tg_audit_sink_dropped(const struct tg_audit_sink *s)
{
    return s != NULL ? atomic_load_explicit(&s->dropped, memory_order_relaxed) : 0;
}

void tg_audit_sink_close(struct tg_audit_sink *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_join(s->thread, NULL);
    tg_buf_cleanup(&s->queue);
    close(s->fd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
