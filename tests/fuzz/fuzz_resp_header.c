/* libFuzzer: an upstream's answer head, line by line, into a tg_resp, then read back. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gateway/req.h"
#include "gateway/resp_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tg_resp rh = {0};
    const char *p = (const char *)data;
    const char *end = p + size;
    size_t pos = 0;
    const char *name;
    const char *value;

    /* curl hands over one line at a time, each ending in LF. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        tg_resp_header_line(&rh, p, n);
        p += n;
    }
    while (tg_resp_header_next(&rh, &pos, &name, &value)) {
        /* every pair must be two strings inside the buffer */
        if (name < rh.hdrs.data || value + strlen(value) > rh.hdrs.data + rh.hdrs.len) {
            __builtin_trap();
        }
    }
    tg_resp_cleanup(&rh);
    return 0;
}
