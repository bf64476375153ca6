/* libFuzzer: traceparent, tracestate and trace ids as they come from clients. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gateway/trace_context.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct tg_traceparent tp;
    char out[1024];
    uint8_t id[16];
    long n;

    if (tg_traceparent_parse(s, size, &tp) == 0) {
        char again[56];
        uint8_t span[8] = {0};
        tg_traceparent_format(tp.trace_id, span, tp.flags, again);
    }
    n = tg_tracestate_normalize(s, size, out, sizeof(out));
    if (n > (long)sizeof(out)) {
        __builtin_trap();
    }
    if (tg_trace_id_is_valid(s, size)) {
        tg_trace_id_to_w3c(s, size, id);
    }
    return 0;
}
