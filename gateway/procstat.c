/* The process's own resource use, from getrusage, /proc/self/statm and /proc/self/fd. */
#include "gateway/procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL) {
        return -1;
    }
    /* readdir is safe here: this stream is private to this call. */
    while ((e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe) */
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* statm: sizes in pages, the first two being the virtual and the resident size. */
static void read_statm(struct tg_procstat *out)
{
    char buf[256];
    uint64_t vsize = 0, rss = 0;
    char *end = NULL, *rest = NULL;
    long page = sysconf(_SC_PAGESIZE);
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd == -1) {
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    vsize = strtoull(buf, &end, 10);
    rss = end != buf ? strtoull(end, &rest, 10) : 0;
    if (end != buf && rest != end && page > 0) {
        out->vsize_bytes = vsize * (uint64_t)page;
        out->rss_bytes = rss * (uint64_t)page;
    }
}

void tg_procstat_read(struct tg_procstat *out)
{
    struct rusage ru;
    struct rlimit rl;

    *out = (struct tg_procstat){.open_fds = -1, .max_fds = -1};
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        out->max_fds = (long)rl.rlim_cur;
    }
    read_statm(out);
    out->open_fds = count_fds();
}
