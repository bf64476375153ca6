#ifndef TG_GATEWAY_TRACE_CONTEXT_H
#define TG_GATEWAY_TRACE_CONTEXT_H

/* W3C Trace Context (Level 1, plus the compatible parts of Level 2) and plain trace ids:
 * parsing, validation and id generation. Pure functions on caller memory, no I/O except the
 * random bytes of gateway/random.h. Every function may be called from any thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef TG_TRACE_ID_MAX
#define TG_TRACE_ID_MAX 128 /* longest plain trace id accepted */
#endif
#define TG_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
/* Longest tracestate we pass on (the spec asks to propagate at least 512 characters and to
 * document the limit): size tg_tracestate_normalize's out as TG_TRACESTATE_MAX + 1. */
#define TG_TRACESTATE_MAX     512
#define TG_TRACESTATE_MEMBERS 32 /* list-members allowed in one tracestate */

#define TG_TRACE_FLAG_SAMPLED 0x01 /* the caller may have recorded trace data */
#define TG_TRACE_FLAG_RANDOM  0x02 /* Level 2: right-most 7 bytes of trace-id are random */

struct tg_traceparent {
    uint8_t version; /* 0x00..0xfe as received */
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags; /* all 8 bits as received; see tg_traceparent_out_flags */
};

/* Parses a traceparent header value: s need not be NUL-terminated, len bytes are read.
 * Leading and trailing spaces and tabs (OWS) are ignored, as the W3C test suite expects even
 * though the HTTP layer usually strips them. Version 00 must be exactly 55 characters; a higher
 * version (not ff) must be at least 55 and, if longer, have '-' as its 56th character: its first
 * four fields are read as version 00 and the rest is ignored. All hex must be lower case and
 * trace-id and parent-id must not be all zero. Returns TG_OK and fills *out, or TG_EINVAL and
 * leaves *out untouched. */
int tg_traceparent_parse(const char *s, size_t len, struct tg_traceparent *out);

/* Writes "00-<trace_id>-<span_id>-<flags>" in lower-case hex and a NUL into out (55 + 1 bytes).
 * Flags are written as given: pass them through tg_traceparent_out_flags first. */
void tg_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[56]);

/* The same from ids already in hex: trace_id 32 and span_id 16 lower-case hex characters. */
void tg_traceparent_format_hex(const char *trace_id, const char *span_id, uint8_t flags,
                               char out[56]);

/* Flags to send upstream when the outgoing traceparent keeps the received trace-id (with a new
 * parent-id): the sampled bit as received, the random-trace-id bit as received (it still holds
 * because the trace-id is unchanged), every reserved bit cleared. A trace the gateway starts
 * itself uses TG_TRACE_FLAG_RANDOM for an id from tg_trace_new_uuid and 0 for an id converted
 * from a plain client id (tg_trace_id_to_w3c), whose randomness is unknown. */
uint8_t tg_traceparent_out_flags(uint8_t received_flags);

/* Validates a tracestate value (repeated tracestate headers joined with ",") and writes its
 * canonical form into out (cap bytes, cap >= 1): the list-members joined by "," without OWS,
 * empty members dropped, and for a key that appears more than once only its left-most member
 * kept (the spec lets a vendor discard duplicates; the left-most is the most recent).
 * Keys follow Level 2: a lower-case letter or digit, then up to 255 lower-case letters, digits,
 * '_', '-', '*', '/' or '@', which accepts every Level 1 simple and multi-tenant key. Values
 * are 1..256 characters of 0x20-0x7E but ',' and '=', not ending in a space. When the canonical
 * form does not fit in cap - 1 characters, whole members are dropped as the spec orders: members
 * longer than 128 characters first, right-most first, then right-most. Returns the length written
 * (0 for an empty or whitespace-only value: send no header then), or -1 when the value is invalid
 * (a member with bad key or value grammar, more than 32 non-empty members, duplicates included) or
 * cap is 0; out is unspecified after -1. */
long tg_tracestate_normalize(const char *s, size_t len, char *out, size_t cap);

/* True when s[0..len) is a plain trace id (X-Trace-Id and friends): 1..TG_TRACE_ID_MAX
 * characters of [A-Za-z0-9._:-]. Anything else (spaces, CR, LF, NUL, non-ASCII) is false. */
bool tg_trace_id_is_valid(const char *s, size_t len);

/* If s[0..len) is a UUID (8-4-4-4-12 hex) or 32 hex digits, in either case, and not all zero,
 * writes its 16 bytes into out and returns true; otherwise returns false and leaves out alone. */
bool tg_trace_id_to_w3c(const char *s, size_t len, uint8_t out[16]);

/* Writes the lower-case hex of in[0..n) and a NUL into out (2n + 1 bytes). */
void tg_hex_lower(const uint8_t *in, size_t n, char *out);

/* Writes a fresh random UUID (version 4, RFC 9562 variant) as 16 bytes into raw and as 36
 * lower-case characters and a NUL into out. Bytes 9..15 are fully random, so the id qualifies
 * for TG_TRACE_FLAG_RANDOM when used as a W3C trace-id. */
void tg_trace_new_uuid(uint8_t raw[16], char out[37]);

/* Writes a fresh random span id into out, never all zero. */
void tg_trace_new_span(uint8_t out[8]);

#endif
