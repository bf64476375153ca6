/* libFuzzer: the conf loader (JSON, positions, every section and route key) on any text. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gateway/conf.h"
#include "routes/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char path[64];
    char err[TG_CONF_ERR_MAX];
    struct tg_conf *conf = NULL;

    /* The loader reads a file: one in memory, rewritten for each input. */
    if (fd == -1) {
        fd = memfd_create("tg-fuzz-conf", MFD_CLOEXEC);
        if (fd == -1) {
            abort();
        }
    }
    if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (tg_conf_load(path, tg_route_table_load, &conf, err, sizeof(err)) == 0) {
        tg_conf_unref(conf);
    }
    return 0;
}
