#ifndef TG_GATEWAY_PROCSTAT_H
#define TG_GATEWAY_PROCSTAT_H

#include <stdint.h>

/* What the process uses, read from the kernel when /metrics is served (the names Prometheus'
 * process collector uses). */
struct tg_procstat {
    double cpu_seconds;   /* user + system time of every thread */
    uint64_t rss_bytes;   /* resident memory */
    uint64_t vsize_bytes; /* virtual memory */
    long open_fds;        /* -1 when unknown */
    long max_fds;         /* the soft limit; -1 when unlimited or unknown */
};

/* Fills out; a value it cannot read is 0 (or -1 as said above). Any thread. */
void tg_procstat_read(struct tg_procstat *out);

#endif
