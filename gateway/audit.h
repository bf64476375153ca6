#ifndef TG_GATEWAY_AUDIT_H
#define TG_GATEWAY_AUDIT_H

/* The audit sink: a file of its own (created 0600, appended to), written in batches by a thread
 * of its own, so that a worker never waits on the disk. Workers hand it whole lines; the writer
 * writes what gathered every flush_ms (or sooner when much gathered) and syncs the file. If the
 * disk falls behind by TG_AUDIT_QUEUE_MAX bytes, lines are dropped and counted, never blocking. */

#include <stddef.h>
#include <stdint.h>

#include "gateway/err.h"

#define TG_AUDIT_QUEUE_MAX ((size_t)16 << 20)

struct tg_audit_sink;

/* Opens path for appending and starts the writer. TG_OK with *out, or TG_EINVAL (logged) when
 * the file cannot be opened, TG_ENOMEM. Main thread. */
int tg_audit_sink_open(const char *path, unsigned flush_ms,
                       struct tg_audit_sink **out) TG_MUST_CHECK;

/* Queues one record (len bytes, no newline: one is added). Any thread; never blocks on I/O. */
void tg_audit_sink_write(struct tg_audit_sink *s, const char *line, size_t len);

/* Records dropped because the queue was full. Any thread. */
uint64_t tg_audit_sink_dropped(const struct tg_audit_sink *s);

/* Writes what is queued, stops the writer, closes the file. NULL is a no-op. Main thread, once
 * no worker writes any more. */
void tg_audit_sink_close(struct tg_audit_sink *s);

#endif
