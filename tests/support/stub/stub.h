#ifndef TG_TESTS_SUPPORT_STUB_STUB_H
#define TG_TESTS_SUPPORT_STUB_STUB_H

/* Private to tg-stub (every .c in tests/support/stub; main.c says what the program is). Files by
 * job: main.c (options, listeners, accept loop), conn.c (a thread per connection), http.c (reading
 * requests), params.c (test behaviours from the query), services.c (what each service answers),
 * behave.c (sending the answer, and misbehaving), ledger.c (the questionnaire's store of record),
 * record.c (--record file and stdout log),
 * sbuf.c (growable strings, JSON text, clock). Threads: any function may run on any connection
 * thread; shared state is in `stub`, with the locks and atomics its fields name. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_LISTENERS  16
#define N_SERVICES     5
#define MAX_EXTRA_HDRS 16
#define PATTERN_CHUNK  16384

enum service {
    SVC_TEST = 0,
    SVC_QUESTIONNAIRE,
    SVC_PATIENT,
    SVC_HISTORY,
    SVC_COLLECTOR,
};

/* Outcome of reading a request. */
enum rd {
    RD_OK = 0,
    RD_GONE,    /* peer closed or reset; close_by/close_while already set */
    RD_BAD,     /* malformed: 400 */
    RD_TOOBIG,  /* body does not fit in memory: 413 */
    RD_HEADBIG, /* header block over HEAD_MAX: 431 */
};

struct sbuf {
    char *p; /* owned, NUL-terminated when non-NULL */
    size_t len, cap;
    bool oom;
};

struct header {
    char *name, *value; /* borrowed from request.head */
};

struct request {
    char *head;            /* owned copy of the header block, split in place */
    char *method, *target; /* into head; target is raw, as received */
    struct header *hdrs;   /* owned */
    size_t nhdrs;
    char *body; /* owned, may be NULL when body_len is 0 */
    size_t body_len;
    bool keep_alive;
    bool sunk;         /* a /_sink body: read and dropped (body NULL), body_len counted */
    uint64_t body_sha; /* when sunk: the FNV-1a hash of the bytes read */
};

/* Test behaviours from the query string; values point into qbuf (owned, %-decoded in place). */
struct params {
    char *qbuf;
    char *file_body; /* owned: the content of file=PATH, served as the body */
    int status;
    long delay_ms, trickle_ms, trickle_bytes, body_bytes; /* -1: not given */
    /* A body_bytes answer's shape (-1 / false: not given): chunked, at send_rate bytes/s, and
     * cut after stall_after bytes (then silent until the peer leaves) or reset_after bytes
     * (then RST). read_rate paces how fast /_sink reads a body. */
    long send_rate, read_rate, stall_after, reset_after;
    bool chunked;
    bool hang, reset, close, close_after_headers, close_token;
    const char *body, *ctype;
    size_t body_len;
    const char *hdr_name[MAX_EXTRA_HDRS], *hdr_value[MAX_EXTRA_HDRS];
    size_t nhdr;
};

struct reply {
    int status;
    const char *ctype; /* borrowed */
    struct sbuf own;   /* generated body */
    const char *body;  /* borrowed, or own.p */
    size_t len;
    bool pattern;     /* body is `len` bytes of the pattern */
    bool reset_after; /* the ledger stored it: reset the connection instead of answering */
    long hang_ms;     /* the ledger stored it: wait this long before answering */
};

struct conn {
    int fd;
    uint64_t id, t_open;
    enum service svc;
    size_t lidx; /* the listener it came in on (stub.ls) */
    char *in;    /* owned; unread bytes are in[in_start, in_len) */
    size_t in_start, in_len, in_cap;
    unsigned requests;
    bool decided, counted; /* counted: first request was not /_stub/... */
    const char *close_by, *close_while;
    struct conn *prev, *next; /* stub.conns list, under stub.conn_lock */
};

struct listener {
    int fd, port;
    enum service svc;
    char *behave; /* owned: test parameters every request gets (/_stub/behave), or NULL; under
                   * stub.behave_lock */
};

/* Process-wide state, defined in main.c. */
struct stub_state {
    struct listener ls[MAX_LISTENERS];
    size_t nls;
    const char *host, *record_path;
    int record_fd;               /* -1 without --record */
    pthread_mutex_t out_lock;    /* one line at a time on stdout and the record file */
    pthread_mutex_t conn_lock;   /* guards conns and live */
    pthread_mutex_t behave_lock; /* guards every listener's behave */
    pthread_cond_t conn_gone;
    struct conn *conns;
    size_t live;
    pthread_attr_t attr;
    atomic_bool stopping;
    atomic_uint_fast64_t next_conn_id, next_submission, opened, open, requests;
    atomic_uint_fast64_t collected; /* requests the collector service received */
    atomic_uint_fast64_t body_sent; /* bytes of body_bytes answers sent, all connections */
    atomic_uint_fast64_t body_sunk; /* bytes of /_sink bodies read, all connections */
    char pattern[PATTERN_CHUNK + 26];
};
extern struct stub_state stub;

/* Service names indexed by enum service, as --listen PORT:SERVICE spells them. */
extern const char *const service_names[];

/* ---- sbuf.c ---- */

/* CLOCK_MONOTONIC in microseconds (the record file's clock). */
uint64_t now_us(void);
#define FNV1A_INIT 0xcbf29ce484222325u
/* FNV-1a 64-bit hash of p[0..n) (the recorded body_sha). */
uint64_t fnv1a(const char *p, size_t n);
/* The hash h (FNV1A_INIT to start) carried on over p[0..n): a body hashed piece by piece. */
uint64_t fnv1a_more(uint64_t h, const char *p, size_t n);
/* Sleeps until `bytes` bytes since t0_us keep to rate bytes per second (rate <= 0: no wait),
 * or until the stub stops. */
void pace(uint64_t t0_us, uint64_t bytes, long rate);
/* The most bytes to move in one step at rate bytes a second (rate <= 0: max). */
size_t pace_step(long rate, size_t max);
/* Makes room for n more bytes and a NUL; false (and s->oom) when memory ran out. */
bool sbuf_reserve(struct sbuf *s, size_t n);
/* Appends p[0..n), keeping s NUL-terminated; on out of memory only s->oom is set. */
void sbuf_add(struct sbuf *s, const char *p, size_t n);
/* Appends the string str. */
void sbuf_str(struct sbuf *s, const char *str);
/* Appends a printf-formatted text of at most 255 bytes (numbers and short names). */
void sbuf_addf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends p[0..n) as a JSON string; bytes that are not valid UTF-8 become \u00XX. */
void sbuf_json(struct sbuf *s, const char *p, size_t n);
/* Appends r's headers as a JSON array of [name, value] pairs, in the order received. */
void sbuf_json_headers(struct sbuf *s, const struct request *r);

/* ---- record.c ---- */

/* Appends a newline and writes line to fd (skipped when fd < 0) with one write() under
 * stub.out_lock, so lines never interleave; then frees line and resets it to empty. */
void emit(int fd, struct sbuf *line);
/* Records the "open" or "close" event of c at t_us (close also says by whom and while what). */
void record_conn_event(const struct conn *c, const char *event, uint64_t t_us);
/* Records request r received on c: method, raw target, headers, body length and hash. */
void record_request(const struct conn *c, const struct request *r);
/* Writes the access log line of r (answered with status, 0 for none) to stdout: never the
 * body, never the query. */
void log_request(const struct conn *c, const struct request *r, int status);

/* ---- http.c ---- */

/* The peer (or the stub's own shutdown) ended c while it was in state what. */
void mark_gone(struct conn *c, const char *what);
/* True when s is a non-empty HTTP token (RFC 9110 tchar). */
bool is_token(const char *s);
/* True if the comma-separated header value (may be NULL) holds token, case-insensitively. */
bool has_token(const char *value, const char *token);
/* The value of r's first header called name (case-insensitive), borrowed from r, or NULL. */
const char *header_get(const struct request *r, const char *name);
/* True when r is a HEAD request. */
bool is_head(const struct request *r);
/* True for the stub's own /_stub/... paths, which are neither counted nor recorded. */
bool is_stub_target(const char *target);
/* True for /_sink (any query): its body is read at read_rate, hashed and dropped, never kept,
 * so a test can send gigabytes through. */
bool is_sink_target(const char *target);
/* Reads the next request of c into r (r owns what it points to afterwards, also on failure:
 * free it with request_cleanup). Returns RD_OK, or why there is no request. */
enum rd read_request(struct conn *c, struct request *r);
/* Frees what r owns and zeroes it. */
void request_cleanup(struct request *r);

/* ---- params.c ---- */

/* Parses the test parameters of target's raw query into pa (pa->qbuf is owned: free it, also
 * after a failure). Returns false on a malformed test parameter. */
bool parse_params(const char *target, struct params *pa);

/* Parses the parameters of listener lidx's behave (set with /_stub/behave?...), then those of
 * target's query over them, into pa, as parse_params does. */
bool parse_params_on(size_t lidx, const char *target, struct params *pa);

/* /_stub/behave?QUERY on listener lidx: every later request there gets QUERY's test parameters
 * (its own query still wins); no query clears them. Returns false when out of memory. */
bool set_behave(size_t lidx, const char *target);

/* ---- services.c ---- */

/* Fills rep with the answer to r on c: the body or body_bytes pa asks for, else the service's
 * own answer (404 for a path it does not know), with pa's status and ctype over it. rep->own
 * is owned by the caller; the other pointers borrow from r, pa or static text. */
void build_reply(const struct conn *c, const struct request *r, const struct params *pa,
                 struct reply *rep);

/* ---- ledger.c ---- */

/* The questionnaire's submissions with an Idempotency-Key: stored once per key, counted, and
 * answered (or misbehaved at) as the ledger's config says. Returns false without a key. */
bool ledger_submit(const struct request *r, struct reply *rep);
/* /_stub/ledger (GET: read it), /_stub/ledger/config?..., /_stub/ledger/reset. False for other
 * paths. */
bool ledger_control(const struct request *r, const char *path, size_t plen, struct reply *rep);
/* Frees the ledger at exit. */
void ledger_free(void);

/* ---- behave.c ---- */

/* Sends rep (with pa's extra headers when pa is not NULL; no body for HEAD, 204 and 304),
 * adding "Connection: close" when close. Returns false when the peer went away. */
bool send_reply(struct conn *c, bool head, const struct params *pa, const struct reply *rep,
                bool close);
/* Waits up to ms milliseconds (-1: forever) for the peer to close or reset c. Returns true
 * (and marks c gone while what) if it left. */
bool wait_peer_close(struct conn *c, long ms, const char *what);
/* Does what pa asks after its delay: hang, reset, close, or answer (normally, trickled, or cut
 * after the headers). *sent gets the status sent (0 if none). Returns true to keep c open. */
bool act(struct conn *c, const struct request *r, const struct params *pa, int *sent);

/* ---- collector.c ---- */

/* The OTLP/HTTP collector stand-in: records r whole (body included) as an "otlp" line and
 * answers by the path's first segment: /fail-N/... 503 to the first N requests, then 200;
 * /reject/... 400; /hang/... no answer until the peer leaves; anything else 200 "{}". Returns
 * true to keep c open. */
bool collector_serve(struct conn *c, const struct request *r);

/* ---- conn.c ---- */

/* The first request of c (counted: not a /_stub/ path) decides whether c is counted and
 * recorded; later calls do nothing. */
void decide(struct conn *c, bool counted);
/* Answers one request; returns true to wait for another on c. */
bool serve(struct conn *c, const struct request *r);
/* Answers a request that could not be read (400, 413 or 431 by why); c closes after it. */
void refuse(struct conn *c, enum rd why);
/* Takes over the accepted socket fd and serves it on a new detached thread as listener lidx. */
void conn_start(int fd, size_t lidx);
/* Wakes every connection thread and waits up to 3 s for them to finish. Main thread only. */
void stop_connections(void);

#endif
