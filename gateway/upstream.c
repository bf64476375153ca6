/* The upstream client's transfers, the only libcurl user: the worker's curl multi handle driven
 * by its loop, and one transfer per attempt of a call (its url, headers, method, body, TLS, and
 * what curl says at its end). A call's life around its attempts (which target, retries, waits,
 * the end) is in upstream_call.c; gateway/upstream_internal.h holds what both share. */
#include "gateway/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "gateway/conf.h"
#include "gateway/digits.h"
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/pool.h"
#include "gateway/req.h"
#include "gateway/resp_header.h"
#include "gateway/stats.h"
#include "gateway/stream.h"
#include "gateway/trace_context.h"
#include "gateway/upstream_internal.h"

#define EXPECT_THRESHOLD   ((size_t)1 << 20) /* curl 7.88 asks 100-continue above it */
#define EASY_POOL_MAX      256
#define BUDGET_HEADER      "X-Request-Timeout-Ms: "
#define BUDGET_DIGITS      10
#define TRACEPARENT_HEADER "traceparent: "
#define TRACEPARENT_LEN    55

static void drain(struct tg_up *up);

/* ---- buffers ---------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    size_t n = size * nmemb;
    int rc;

    if (call->probe) {
        return n; /* a health check reads the status only */
    }
    if (call->st.recv != NULL) {
        /* A streamed answer: a full ring pauses the transfer; curl keeps the chunk and hands
         * it over again once tg_up_xfer_resume lets it. */
        rc = tg_up_stream_write(call, data, n);
        call->x.recv_paused = rc == 0;
        return rc > 0 ? n : rc == 0 ? CURL_WRITEFUNC_PAUSE : 0;
    }
    rc = tg_buf_append(&call->body, data, n);
    if (rc != TG_OK) {
        call->too_big = rc == TG_ETOOBIG;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* The blank line that ends a head: the call's head hook decides whether the body streams. A
 * streamed body is bounded by the stream timer from here on, not by curl's total timeout. */
static void head_end(struct tg_up_call *call)
{
    long status = 0;
    curl_off_t length = -1;

    curl_easy_getinfo(call->x.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(call->x.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    call->status = (int)status;
    if (tg_up_stream_head(call, (int)status, length >= 0 ? (int64_t)length : -1)) {
        tg_up_xfer_untimed(call);
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    size_t n = size * nmemb;

    if (tg_resp_header_line(&call->rh, data, n) != TG_OK) {
        return 0;
    }
    if (call->st.head != NULL && !call->st.head_seen && n <= 2 &&
        (data[0] == '\r' || data[0] == '\n')) {
        head_end(call);
    }
    return n;
}

/* ---- curl multi <-> loop ------------------------------------------------------------------ */

static void on_socket_ready(void *arg, int fd, uint32_t events)
{
    struct tg_up *up = arg;
    int flags = 0;
    int running;

    if (events & EPOLLIN) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & EPOLLOUT) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        flags |= CURL_CSELECT_ERR;
    }
    curl_multi_socket_action((CURLM *)up->multi, fd, flags, &running);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct tg_up *up = userp;
    uint32_t ev = 0;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        tg_loop_park(up->loop, s);
        return 0;
    }
    if (what & CURL_POLL_IN) {
        ev |= EPOLLIN;
    }
    if (what & CURL_POLL_OUT) {
        ev |= EPOLLOUT;
    }
    return tg_loop_watch(up->loop, s, ev, on_socket_ready, up) == TG_OK ? 0 : -1;
}

/* curl opens its connections through here, so the loop knows their closes will be reported. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct tg_up *up = clientp;
    int fd;

    (void)purpose;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd == -1) {
        return CURL_SOCKET_BAD;
    }
    if (tg_loop_track(up->loop, fd) != TG_OK) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

/* curl closes its sockets through here, so a parked fd is forgotten before its number can be
 * reused. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    struct tg_up *up = clientp;

    tg_loop_forget(up->loop, fd);
    return close(fd);
}

/* Never act inside curl's timer callback: store the due time, the loop fires it. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct tg_up *up = userp;

    (void)multi;
    if (timeout_ms < 0) {
        up->timer_due_us = 0;
    } else {
        up->timer_due_us = tg_now_us() + (uint64_t)timeout_ms * 1000u;
        if (up->timer_due_us == 0) {
            up->timer_due_us = 1;
        }
    }
    return 0;
}

/* The loop's wait: until curl's timer or the first waiting call is due. */
static long hook_timeout(void *arg)
{
    struct tg_up *up = arg;
    uint64_t due = up->timer_due_us;
    uint64_t now;

    long streams = tg_up_stream_next_ms(up);
    long ms;

    if (!tg_list_is_empty(&up->waiting)) {
        uint64_t w = TG_LIST_ENTRY(up->waiting.next, struct tg_up_call, wait_link)->due_us;
        due = due == 0 || w < due ? (w > 0 ? w : 1) : due;
    }
    if (due == 0) {
        return streams;
    }
    now = tg_now_us();
    ms = now >= due ? 0 : (long)((due - now + 999) / 1000);
    return streams >= 0 && streams < ms ? streams : ms;
}

static void hook_tick(void *arg)
{
    struct tg_up *up = arg;
    int running;

    if (up->timer_due_us != 0 && tg_now_us() >= up->timer_due_us) {
        up->timer_due_us = 0;
        curl_multi_socket_action((CURLM *)up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    drain(up);
    tg_up_run_waiting(up);
    if (!tg_list_is_empty(&up->timed)) {
        tg_up_stream_run_timers(up);
    }
}

struct tg_up *tg_up_new(struct tg_loop *loop, unsigned max_connects)
{
    struct tg_up *up = calloc(1, sizeof(*up));

    if (up == NULL) {
        return NULL;
    }
    up->loop = loop;
    tg_list_init(&up->waiting);
    tg_list_init(&up->timed);
    up->multi = curl_multi_init();
    up->pool = calloc(EASY_POOL_MAX, sizeof(*up->pool));
    if (up->multi == NULL || up->pool == NULL) {
        tg_log(TG_LOG_ERROR, NULL, "upstream.error", "curl_multi_init failed");
        tg_up_free(up);
        return NULL;
    }
    curl_multi_setopt((CURLM *)up->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt((CURLM *)up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt((CURLM *)up->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt((CURLM *)up->multi, CURLMOPT_TIMERDATA, up);
    /* The cache must hold the peak of parallel calls, or curl closes connections that the next
     * requests would have reused. */
    curl_multi_setopt((CURLM *)up->multi, CURLMOPT_MAXCONNECTS, (long)max_connects);
    if (tg_loop_add_hook(loop, hook_tick, hook_timeout, up) != TG_OK) {
        tg_up_free(up);
        return NULL;
    }
    return up;
}

void tg_up_free(struct tg_up *up)
{
    if (up == NULL) {
        return;
    }
    for (size_t i = 0; i < up->n_pool; i++) {
        curl_easy_cleanup((CURL *)up->pool[i]);
    }
    free(up->pool);
    if (up->multi != NULL) {
        curl_multi_cleanup((CURLM *)up->multi);
    }
    free(up);
}

static CURL *easy_get(struct tg_up *up)
{
    if (up->n_pool > 0) {
        return (CURL *)up->pool[--up->n_pool];
    }
    return curl_easy_init();
}

static void easy_put(struct tg_up *up, CURL *easy)
{
    if (easy == NULL) {
        return;
    }
    if (up->n_pool == EASY_POOL_MAX) {
        curl_easy_cleanup(easy);
        return;
    }
    curl_easy_reset(easy);
    up->pool[up->n_pool++] = easy;
}

/* ---- what a transfer sends ------------------------------------------------------------------ */

static bool has_header(const struct tg_up_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_hdrs; i++) {
        if (tg_header_name_is(r->hdrs[i].name, r->hdrs[i].name_len, name)) {
            return true;
        }
    }
    return false;
}

/* The header lines of one call, in one allocation: curl_slist nodes first, then the text they
 * point to. curl only reads the list while a transfer runs, so it need not be built (and
 * freed) one strdup'd node at a time with curl_slist_append; the two lines that change from
 * attempt to attempt are rewritten in place between transfers. */
struct hdr_builder {
    struct curl_slist *nodes;
    size_t n, max;
    char *text;
    size_t used, cap;
};

/* Appends "a" "b" "c" as one line (b and c may be empty); returns where it starts. */
static char *push(struct hdr_builder *hb, const char *a, size_t alen, const char *b, size_t blen,
                  const char *c, size_t clen)
{
    char *line = hb->text + hb->used;

    if (hb->n == hb->max || hb->used + alen + blen + clen + 1 > hb->cap) {
        return line; /* cannot happen: sized in advance */
    }
    memcpy(line, a, alen);
    memcpy(line + alen, b, blen);
    memcpy(line + alen + blen, c, clen);
    line[alen + blen + clen] = '\0';
    hb->used += alen + blen + clen + 1;
    hb->nodes[hb->n].data = line;
    hb->nodes[hb->n].next = NULL;
    if (hb->n > 0) {
        hb->nodes[hb->n - 1].next = &hb->nodes[hb->n];
    }
    hb->n++;
    return line;
}

#define PUSH_LIT(hb, lit) push(hb, lit, sizeof(lit) - 1, "", 0, "", 0)

/* Whether the transfer goes out as curl's POST (set_method): with a body, or a method other
 * than GET and HEAD. */
static bool sends_body(const struct tg_up_request *r)
{
    if (strcmp(r->method, "HEAD") == 0) {
        return false;
    }
    return strcmp(r->method, "GET") != 0 || r->body_len > 0;
}

static int build_headers(struct tg_up_call *call, const struct tg_up_request *r)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000";
    const struct tg_req *req = call->req;
    struct hdr_builder hb = {0};
    const char *th = req->conf->trace_header;
    size_t ts_len = req->trace.state != NULL ? strlen(req->trace.state) : 0;

    hb.max = r->n_hdrs + 8;
    hb.cap = 256 + strlen(th) + strlen(req->trace.id) + ts_len;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        hb.cap += r->hdrs[i].name_len + r->hdrs[i].value_len + 3;
    }
    call->x.hdr_block = malloc(hb.max * sizeof(*hb.nodes) + hb.cap);
    if (call->x.hdr_block == NULL) {
        return TG_ENOMEM;
    }
    hb.nodes = call->x.hdr_block;
    hb.text = (char *)(hb.nodes + hb.max);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct tg_kv *kv = &r->hdrs[i];
        push(&hb, kv->name, kv->name_len, ": ", 2, kv->value, kv->value_len);
    }
    /* placeholders of the right length: each attempt writes its span and budget there */
    call->x.tp_line = push(&hb, TRACEPARENT_HEADER, sizeof(TRACEPARENT_HEADER) - 1, zeros,
                           TRACEPARENT_LEN, "", 0) +
                      sizeof(TRACEPARENT_HEADER) - 1;
    if (req->trace.state != NULL) {
        push(&hb, "tracestate: ", 12, req->trace.state, ts_len, "", 0);
    }
    push(&hb, th, strlen(th), ": ", 2, req->trace.id, strlen(req->trace.id));
    call->x.budget_line =
        push(&hb, BUDGET_HEADER, sizeof(BUDGET_HEADER) - 1, zeros, BUDGET_DIGITS, "", 0) +
        sizeof(BUDGET_HEADER) - 1;
    /* An empty value removes what curl would add on its own: a form Content-Type on requests
     * that carry a body (curl sends every other request without one), Expect: 100-continue
     * above curl's 1 MiB threshold or on a streamed body of unknown length (a 1 s wait on an
     * upstream that never says 100), and Accept: *\/\*. Every byte of a header line costs curl
     * about 100 instructions, so only what applies is sent. */
    if (r->body_stream != NULL || (sends_body(r) && r->body_len >= EXPECT_THRESHOLD)) {
        PUSH_LIT(&hb, "Expect:");
    }
    if (!has_header(r, "Accept")) {
        PUSH_LIT(&hb, "Accept:");
    }
    if (sends_body(r) && !has_header(r, "Content-Type")) {
        PUSH_LIT(&hb, "Content-Type:");
    }
    call->x.headers = hb.nodes;
    return TG_OK;
}

/* This attempt's span (a new span id under the request's trace) and budget, in its headers. */
static void attempt_headers(struct tg_up_call *call)
{
    const struct tg_req *req = call->req;
    uint8_t span_raw[8];
    char tp[TRACEPARENT_LEN + 1];

    tg_trace_new_span(span_raw);
    tg_hex_lower(span_raw, 8, call->span);
    tg_traceparent_format(req->trace.bin, span_raw, req->trace.flags, tp);
    memcpy(call->x.tp_line, tp, TRACEPARENT_LEN);
    tg_u64_dec(call->timeout_ms, call->x.budget_line); /* at most 10 digits and the NUL */
}

/* RFC 9110 9.2.2: a request that may be repeated without changing the outcome. */
static bool is_idempotent(const char *method)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};

    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
        if (strcmp(method, safe[i]) == 0) {
            return true;
        }
    }
    return false;
}

static size_t on_read_body(char *buf, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    size_t n = size * nmemb;

    if (n > call->send_len - call->x.send_off) {
        n = call->send_len - call->x.send_off;
    }
    memcpy(buf, call->send + call->x.send_off, n);
    call->x.send_off += n;
    return n;
}

/* A streamed request body: what its ring has; an empty ring pauses the upload until the client
 * sends more (tg_up_xfer_resume). */
static size_t on_read_stream(char *buf, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    long n = tg_up_stream_read(call, buf, size * nmemb);

    call->x.send_paused = n == TG_UP_READ_WAIT;
    if (n == TG_UP_READ_WAIT) {
        return CURL_READFUNC_PAUSE;
    }
    return n == TG_UP_READ_ABORT ? CURL_READFUNC_ABORT : (size_t)n;
}

/* curl asks to rewind only to send the request again on a new connection, after a kept-alive
 * one died under it. The upstream may have acted on the first copy already: refused. */
static int on_seek_body(void *userp, curl_off_t offset, int origin)
{
    (void)userp;
    (void)offset;
    (void)origin;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* The body is read through fn, and curl cannot rewind it (on_seek_body refuses). */
static void read_through(struct tg_up_call *call, curl_read_callback fn)
{
    curl_easy_setopt(call->x.easy, CURLOPT_READFUNCTION, fn);
    curl_easy_setopt(call->x.easy, CURLOPT_READDATA, call);
    curl_easy_setopt(call->x.easy, CURLOPT_SEEKFUNCTION, on_seek_body);
    curl_easy_setopt(call->x.easy, CURLOPT_SEEKDATA, call);
}

/* A streamed body goes as it comes, with its length when the client gave one, else chunked;
 * it cannot be rewound, whatever the method. */
static void set_streamed_body(struct tg_up_call *call)
{
    CURL *easy = call->x.easy;
    int64_t length = call->st.send->length;

    call->x.send_off = 0; /* what the body held before it streamed goes first */
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(length >= 0 ? (int64_t)call->send_len + length : -1));
    read_through(call, on_read_stream);
    if (strcmp(call->method, "POST") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call->method);
    }
}

static void set_method(struct tg_up_call *call)
{
    CURL *easy = call->x.easy;

    if (call->st.send != NULL) {
        set_streamed_body(call);
        return;
    }
    if (strcmp(call->method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(call->method, "GET") == 0 && call->send_len == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->send_len);
    if (is_idempotent(call->method)) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->send_len > 0 ? call->send : "");
    } else {
        /* Sent through a callback that cannot rewind: curl's silent resend of a request on a
         * fresh connection would deliver a submission twice. */
        call->x.send_off = 0;
        read_through(call, on_read_body);
    }
    if (strcmp(call->method, "POST") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call->method);
    }
}

/* The upstream's TLS settings (gateway/conf_upstream.h). curl keeps connections made with other
 * settings apart, so targets of different upstreams never share one. */
static void set_tls(struct tg_up_call *call)
{
    const struct tg_upstream_tls *tls = &call->u->tls;
    CURL *easy = call->x.easy;

    if (tls->ca_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
    }
    if (tls->cert != NULL) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert);
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key);
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (!tls->verify) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (call->x.connect_to != NULL) {
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, (struct curl_slist *)call->x.connect_to);
    }
}

static void set_options(struct tg_up_call *call)
{
    CURL *easy = call->x.easy;

    curl_easy_setopt(easy, CURLOPT_URL, call->x.url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* Upstreams are reached directly: no proxy from the environment (and no getenv per call). */
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    if (call->x.headers != NULL) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, (struct curl_slist *)call->x.headers);
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, call->up);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, call->up);
    /* A total deadline, not an inactivity timer: a trickling backend is cut when it expires.
     * A streamed request body has the stream timer instead (upstream_stream.c). */
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, call->st.send != NULL ? 0L : (long)call->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(call->connect_ms > 0 ? call->connect_ms : 1000));
    if (call->u != NULL) {
        set_tls(call);
    }
    set_method(call);
}

/* The host (as written, brackets kept) and port of origin "scheme://authority". */
static void origin_parts(const char *origin, const char **host, size_t *host_len, unsigned *port)
{
    const char *a = strstr(origin, "://") + 3;
    const char *end = a[0] == '[' ? strchr(a, ']') + 1 : a + strcspn(a, ":");

    *host = a;
    *host_len = (size_t)(end - a);
    *port = *end == ':'                        ? (unsigned)strtoul(end + 1, NULL, 10)
            : strncmp(origin, "https", 5) == 0 ? 443u
                                               : 80u;
}

/* This attempt's url: the target's origin and the path. With tls.server_name the url names
 * the server and CURLOPT_CONNECT_TO sends the connection to the target (SNI, certificate check
 * and Host all say the name). */
static void attempt_url(struct tg_up_call *call)
{
    const struct tg_upstream *u = call->u;
    struct curl_slist *node = call->x.connect_to;
    char *text = (char *)(node + 1);
    const char *origin, *host;
    size_t host_len;
    unsigned port;

    if (u == NULL) {
        return; /* one fixed url, written at start */
    }
    origin = u->targets[call->target].url;
    if (node == NULL) {
        /* origin then path, without printf: this runs for every attempt */
        size_t olen = strlen(origin);
        size_t plen = strlen(call->path);
        if (olen + plen < call->x.url_cap) { /* sized for the longest origin in prepare */
            memcpy(call->x.url, origin, olen);
            memcpy(call->x.url + olen, call->path, plen + 1);
        }
        return;
    }
    origin_parts(origin, &host, &host_len, &port);
    snprintf(call->x.url, call->x.url_cap, "https://%s:%u%s", u->tls.server_name, port, call->path);
    snprintf(text, call->x.connect_to_cap, "%s:%u:%.*s:%u", u->tls.server_name, port, (int)host_len,
             host, port);
    node->data = text;
    node->next = NULL;
}

/* ---- how an attempt ended ----------------------------------------------------------------- */

static int map_curl_error(struct tg_up_call *call, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return TG_OK;
    case CURLE_OPERATION_TIMEDOUT:
        call->detail = "deadline exceeded";
        return TG_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        call->detail = "connect refused";
        return TG_EUPSTREAM;
    case CURLE_COULDNT_RESOLVE_HOST:
        call->detail = "cannot resolve host";
        return TG_EUPSTREAM;
    case CURLE_SSL_CONNECT_ERROR:
        call->detail = "TLS handshake failed";
        return TG_EUPSTREAM;
    case CURLE_PEER_FAILED_VERIFICATION:
        call->detail = "upstream certificate not trusted";
        return TG_EUPSTREAM;
    case CURLE_GOT_NOTHING:
        call->detail = "closed without answer";
        return TG_EUPSTREAM;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        call->detail = "connection reset";
        return TG_EUPSTREAM;
    case CURLE_SEND_FAIL_REWIND:
        call->detail = "connection lost before an answer; not resent (not idempotent)";
        return TG_EUPSTREAM;
    case CURLE_PARTIAL_FILE:
        call->detail = "truncated answer";
        return TG_EUPSTREAM;
    case CURLE_WRITE_ERROR:
        if (call->too_big) {
            call->detail = "answer too large";
            return TG_ERESPTOOBIG;
        }
        call->detail = "out of memory";
        return TG_EUPSTREAM;
    default:
        call->detail = curl_easy_strerror(rc);
        return TG_EUPSTREAM;
    }
}

/* What the attempt says about its target. sent: curl wrote the request's head; a timeout
 * before that is a connect that never finished, and nothing reached the target. */
static enum tg_outcome classify(CURLcode rc, int status, bool sent)
{
    switch (rc) {
    case CURLE_OK:
        return status >= 500 ? TG_OUT_STATUS : status == 429 ? TG_OUT_BACKPRESSURE : TG_OUT_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return TG_OUT_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return sent ? TG_OUT_TIMEOUT : TG_OUT_CONNECT;
    case CURLE_WRITE_ERROR:
        return TG_OUT_NONE; /* too large, or out of memory: our limit, not its fault */
    default:
        return TG_OUT_RESET;
    }
}

/* ---- transfers ----------------------------------------------------------------------------- */

int tg_up_xfer_prepare(struct tg_up_call *call, const struct tg_up_request *r)
{
    const struct tg_upstream *u = call->u;
    size_t longest = 0;

    for (size_t i = 0; u != NULL && i < u->n_targets; i++) {
        size_t n = strlen(u->targets[i].url);
        longest = n > longest ? n : longest;
    }
    if (u != NULL && u->tls.server_name != NULL) {
        call->x.connect_to_cap = 2 * strlen(u->tls.server_name) + longest + 32;
        call->x.connect_to = malloc(sizeof(struct curl_slist) + call->x.connect_to_cap);
        if (call->x.connect_to == NULL) {
            return TG_ENOMEM;
        }
        longest += strlen(u->tls.server_name) + 16;
    }
    call->x.url_cap = longest + strlen(call->path) + 1;
    call->x.url = malloc(call->x.url_cap);
    if (call->x.url == NULL) {
        return TG_ENOMEM;
    }
    if (u == NULL) {
        memcpy(call->x.url, call->path, call->x.url_cap); /* the one fixed url */
    }
    return r != NULL ? build_headers(call, r) : TG_OK;
}

int tg_up_xfer_start(struct tg_up_call *call)
{
    call->x.easy = easy_get(call->up);
    if (call->x.easy == NULL) {
        return TG_ENOMEM;
    }
    attempt_url(call);
    if (call->req != NULL) {
        attempt_headers(call);
    }
    set_options(call);
    if (curl_multi_add_handle((CURLM *)call->up->multi, call->x.easy) != CURLM_OK) {
        easy_put(call->up, call->x.easy);
        call->x.easy = NULL;
        return TG_EINTERNAL;
    }
    return TG_OK;
}

void tg_up_xfer_stop(struct tg_up_call *call)
{
    long request_size = 0;

    call->x.recv_paused = false;
    call->x.send_paused = false;
    if (call->x.easy == NULL) {
        return;
    }
    curl_easy_getinfo(call->x.easy, CURLINFO_REQUEST_SIZE, &request_size);
    call->sent = call->sent || request_size > 0;
    curl_multi_remove_handle((CURLM *)call->up->multi, call->x.easy);
    easy_put(call->up, call->x.easy);
    call->x.easy = NULL;
}

/* "ip:port", "[v6]:port" for an IPv6 address; "" when it does not fit cap. */
static void put_peer(const char *ip, long port, char *out, size_t cap)
{
    size_t ip_len = strlen(ip);
    bool v6 = memchr(ip, ':', ip_len) != NULL;
    char digits[TG_U64_DIGITS + 1];
    size_t n = tg_u64_dec(port > 0 ? (uint64_t)port : 0, digits);
    char *p = out;

    if (ip_len + n + (v6 ? 4 : 2) > cap) {
        return;
    }
    if (v6) {
        *p++ = '[';
    }
    memcpy(p, ip, ip_len + 1); /* its NUL is overwritten next */
    p += ip_len;
    if (v6) {
        *p++ = ']';
    }
    *p++ = ':';
    memcpy(p, digits, n + 1);
}

void tg_up_xfer_resume(struct tg_up_call *call, bool recv)
{
    bool *paused = recv ? &call->x.recv_paused : &call->x.send_paused;

    if (!*paused || call->x.easy == NULL) {
        return;
    }
    /* Cleared first: unpausing the receiving side hands curl's kept chunk to the write
     * callback at once, which may pause it again. */
    *paused = false;
    curl_easy_pause(call->x.easy, (call->x.recv_paused ? CURLPAUSE_RECV : 0) |
                                      (call->x.send_paused ? CURLPAUSE_SEND : 0));
}

void tg_up_xfer_untimed(struct tg_up_call *call)
{
    curl_easy_setopt(call->x.easy, CURLOPT_TIMEOUT_MS, 0L);
}

void tg_up_xfer_peer(const struct tg_up_call *call, char *out, size_t cap)
{
    char *ip = NULL;
    long port = 0;

    out[0] = '\0';
    if (curl_easy_getinfo(call->x.easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL &&
        ip[0] != '\0' &&
        curl_easy_getinfo(call->x.easy, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK) {
        put_peer(ip, port, out, cap);
    }
}

void tg_up_xfer_cleanup(struct tg_up_call *call)
{
    tg_up_xfer_stop(call);
    TG_FREE(call->x.hdr_block); /* headers, tp_line and budget_line point into it */
    call->x.headers = NULL;
    TG_FREE(call->x.url);
    TG_FREE(call->x.connect_to);
}

/* curl says the transfer of call is over. */
static void transfer_done(struct tg_up_call *call, CURLMsg *msg)
{
    long status = 0, sent = 0, got = 0;
    int err;

    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_HEADER_SIZE, &got);
    err = map_curl_error(call, msg->data.result);
    /* A streamed answer's head went on to the client: its status is what the client got. */
    call->status = err == TG_OK || call->st.recv != NULL ? (int)status : 0;
    tg_up_call_ended(call, err, classify(msg->data.result, call->status, sent > 0), got > 0);
}

static void drain(struct tg_up *up)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read((CURLM *)up->multi, &left)) != NULL) {
        struct tg_up_call *call = NULL;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        transfer_done(call, msg);
    }
}

const char *tg_up_lib_version(void)
{
    return curl_version_info(CURLVERSION_NOW)->version;
}

/* ---- one-shot posts ------------------------------------------------------------------------ */

struct tg_up_post {
    CURL *easy; /* owned */
    tg_up_post_stop_fn *stop;
    void *stop_arg;
};

/* curl's progress callback, about once a second even while nothing moves: non-zero aborts. */
static int post_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    struct tg_up_post *p = clientp;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return p->stop != NULL && p->stop(p->stop_arg) ? 1 : 0;
}

struct tg_up_post *tg_up_post_new(tg_up_post_stop_fn *stop, void *arg)
{
    struct tg_up_post *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->stop = stop;
    p->stop_arg = arg;
    p->easy = curl_easy_init();
    if (p->easy == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* The answer's body is not needed: what the collector says goes nowhere. curl's callback type.
 * NOLINTNEXTLINE(readability-non-const-parameter) */
static size_t discard_body(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

int tg_up_post_send(struct tg_up_post *p, const char *url, const char *ctype, const char *body,
                    size_t len, unsigned timeout_ms, int *status, unsigned *retry_after_s)
{
    char ct[128];
    struct curl_slist hdrs[2] = {{ct, &hdrs[1]}, {"Expect:", NULL}};
    long code = 0;
    curl_off_t after = 0;
    CURLcode rc;

    *status = 0;
    *retry_after_s = 0;
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    curl_easy_reset(p->easy);
    curl_easy_setopt(p->easy, CURLOPT_URL, url);
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(p->easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(p->easy, CURLOPT_XFERINFOFUNCTION, post_progress);
    curl_easy_setopt(p->easy, CURLOPT_XFERINFODATA, p);
    rc = curl_easy_perform(p->easy);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        return TG_ETIMEDOUT;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        return TG_ECANCELED;
    }
    if (rc != CURLE_OK) {
        return TG_EUPSTREAM;
    }
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(p->easy, CURLINFO_RETRY_AFTER, &after);
    *status = (int)code;
    *retry_after_s = after > 0 && after < 3600 ? (unsigned)after : 0;
    return TG_OK;
}

void tg_up_post_free(struct tg_up_post *p)
{
    if (p != NULL) {
        curl_easy_cleanup(p->easy);
        free(p);
    }
}
