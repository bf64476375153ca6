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
#include "gateway/log.h"
#include "gateway/loop.h"
#include "gateway/req.h"
#include "gateway/stats.h"
#include "gateway/trace_context.h"

#define EASY_POOL_MAX 256

/* Calls in flight to one upstream, on this worker (for max_in_flight). */
struct label_count {
    char *name; /* owned */
    unsigned n;
};

struct tg_up {
    CURLM *multi;
    struct label_count *counts; /* owned, one per upstream label seen */
    size_t n_counts;
    struct tg_loop *loop;
    uint64_t timer_due_us; /* 0: no curl timer armed */
    CURL **pool;           /* owned idle easy handles, reset and ready */
    size_t n_pool;
};

struct tg_up_call {
    struct tg_up *up;           /* borrowed */
    struct tg_req *req;         /* borrowed */
    struct tg_list link;        /* in req->calls */
    CURL *easy;                 /* owned */
    struct curl_slist *headers; /* borrowed: the list inside hdr_block */
    void *hdr_block;            /* owned: header nodes and text, one allocation */
    tg_up_done_fn *done;
    void *arg;
    const char *label;  /* borrowed from the conf held by req */
    struct tg_buf body; /* the answer's body, limited to max_body */
    struct tg_resp rh;  /* owned: the answer's headers (only its header part is used) */
    int status;
    const char *detail;
    char span[17];
    uint64_t start_us, end_us;
    unsigned timeout_ms;
    bool too_big;
    bool sent;        /* request bytes went out (CURLINFO_REQUEST_SIZE > 0) */
    long count_idx;   /* index in up->counts, -1 when not counted */
    const char *send; /* borrowed request body, for a body sent through on_read_body */
    size_t send_len, send_off;
};

static void call_release(struct tg_up_call *call);

/* ---- buffers ---------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    size_t n = size * nmemb;
    int rc = tg_buf_append(&call->body, data, n);

    if (rc != TG_OK) {
        call->too_big = rc == TG_ETOOBIG;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tg_up_call *call = userp;
    size_t n = size * nmemb;
    size_t len = trim_len(data, n);
    const char *colon;
    size_t name_len, off;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new status line: headers of an interim 1xx answer are dropped. */
        call->rh.hdrs.len = 0;
        return n;
    }
    colon = memchr(data, ':', len);
    if (len == 0 || colon == NULL || data[0] == ' ' || data[0] == '\t') {
        return n; /* blank line, or obsolete line folding: ignored */
    }
    name_len = (size_t)(colon - data);
    off = name_len + 1;
    while (off < len && (data[off] == ' ' || data[off] == '\t')) {
        off++;
    }
    if (tg_resp_add_headern(&call->rh, data, name_len, data + off, len - off) != TG_OK) {
        return 0;
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
    curl_multi_socket_action(up->multi, fd, flags, &running);
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

static long hook_timeout(void *arg)
{
    struct tg_up *up = arg;
    uint64_t now;

    if (up->timer_due_us == 0) {
        return -1;
    }
    now = tg_now_us();
    if (now >= up->timer_due_us) {
        return 0;
    }
    return (long)((up->timer_due_us - now + 999) / 1000);
}

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

static void log_done(const struct tg_up_call *call, int err)
{
    struct tg_logline l;
    const struct tg_req *req = call->req;

    tg_logline_begin(&l, err == TG_OK ? TG_LOG_INFO : TG_LOG_WARN, NULL, "upstream.done");
    tg_logline_str(&l, "trace_id", req->trace.id);
    tg_logline_str(&l, "span_id", call->span);
    tg_logline_str(&l, "parent_span_id", req->trace.span);
    tg_logline_str(&l, "upstream", call->label);
    tg_logline_int(&l, "status", call->status);
    tg_logline_ms(&l, "duration_ms", (double)(call->end_us - call->start_us) / 1000.0);
    tg_logline_int(&l, "timeout_ms", call->timeout_ms);
    if (err != TG_OK) {
        tg_logline_str(&l, "err", tg_strerror(err));
        tg_logline_str(&l, "reason", call->detail);
    }
    tg_logline_end(&l);
}

/* Unlinks call from its request and the multi handle, runs done, frees the call. */
static void call_finish(struct tg_up_call *call, int err)
{
    struct tg_req *req = call->req;
    long request_size = 0;

    curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &request_size);
    call->sent = request_size > 0;
    curl_multi_remove_handle(call->up->multi, call->easy);
    tg_list_remove(&call->link);
    req->pending--;
    if (call->count_idx >= 0) {
        call->up->counts[call->count_idx].n--;
    }
    call->end_us = tg_now_us();
    req->end.upstream_us += call->end_us - call->start_us;
    if (call->status > 0) {
        req->end.upstream_status = call->status;
    }
    log_done(call, err);
    call->done(call->arg, call, err);
    call_release(call);
}

static void drain(struct tg_up *up)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        struct tg_up_call *call = NULL;
        long status = 0;
        int err;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        err = map_curl_error(call, msg->data.result);
        call->status = err == TG_OK ? (int)status : 0;
        call_finish(call, err);
    }
}

static void hook_tick(void *arg)
{
    struct tg_up *up = arg;
    int running;

    if (up->timer_due_us != 0 && tg_now_us() >= up->timer_due_us) {
        up->timer_due_us = 0;
        curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    drain(up);
}

struct tg_up *tg_up_new(struct tg_loop *loop, unsigned max_connects)
{
    struct tg_up *up = calloc(1, sizeof(*up));

    if (up == NULL) {
        return NULL;
    }
    up->loop = loop;
    up->multi = curl_multi_init();
    up->pool = calloc(EASY_POOL_MAX, sizeof(*up->pool));
    if (up->multi == NULL || up->pool == NULL) {
        tg_log(TG_LOG_ERROR, NULL, "upstream.error", "curl_multi_init failed");
        tg_up_free(up);
        return NULL;
    }
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    /* The cache must hold the peak of parallel calls, or curl closes connections that the next
     * requests would have reused. */
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, (long)max_connects);
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
        curl_easy_cleanup(up->pool[i]);
    }
    free(up->pool);
    for (size_t i = 0; i < up->n_counts; i++) {
        free(up->counts[i].name);
    }
    free(up->counts);
    if (up->multi != NULL) {
        curl_multi_cleanup(up->multi);
    }
    free(up);
}

/* ---- calls ------------------------------------------------------------------------------- */

static CURL *easy_get(struct tg_up *up)
{
    if (up->n_pool > 0) {
        return up->pool[--up->n_pool];
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

static void call_release(struct tg_up_call *call)
{
    if (call == NULL) {
        return;
    }
    easy_put(call->up, call->easy);
    free(call->hdr_block); /* call->headers points into it */
    tg_buf_cleanup(&call->body);
    tg_resp_cleanup(&call->rh);
    free(call);
}

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
 * point to. curl only reads the list while the transfer runs, so it need not be built (and
 * freed) one strdup'd node at a time with curl_slist_append. */
struct hdr_builder {
    struct curl_slist *nodes;
    size_t n, max;
    char *text;
    size_t used, cap;
};

/* Appends "a" "b" "c" as one line (b and c may be empty). */
static void push(struct hdr_builder *hb, const char *a, size_t alen, const char *b, size_t blen,
                 const char *c, size_t clen)
{
    char *line = hb->text + hb->used;

    if (hb->n == hb->max || hb->used + alen + blen + clen + 1 > hb->cap) {
        return; /* cannot happen: sized in advance */
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
}

#define PUSH_LIT(hb, lit) push(hb, lit, sizeof(lit) - 1, "", 0, "", 0)

static int build_headers(struct tg_up_call *call, const struct tg_up_request *r)
{
    const struct tg_req *req = call->req;
    struct hdr_builder hb = {0};
    const char *th = req->conf->trace_header;
    size_t ts_len = req->trace.state != NULL ? strlen(req->trace.state) : 0;
    uint8_t span_raw[8];
    char tp[56];
    char budget[16];
    int blen = snprintf(budget, sizeof(budget), "%u", call->timeout_ms);

    hb.max = r->n_hdrs + 8;
    hb.cap = 256 + strlen(th) + strlen(req->trace.id) + ts_len;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        hb.cap += r->hdrs[i].name_len + r->hdrs[i].value_len + 3;
    }
    call->hdr_block = malloc(hb.max * sizeof(*hb.nodes) + hb.cap);
    if (call->hdr_block == NULL) {
        return TG_ENOMEM;
    }
    hb.nodes = call->hdr_block;
    hb.text = (char *)(hb.nodes + hb.max);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct tg_kv *kv = &r->hdrs[i];
        push(&hb, kv->name, kv->name_len, ": ", 2, kv->value, kv->value_len);
    }
    tg_trace_new_span(span_raw);
    tg_hex_lower(span_raw, 8, call->span);
    tg_traceparent_format(req->trace.bin, span_raw, req->trace.flags, tp);
    push(&hb, "traceparent: ", 13, tp, strlen(tp), "", 0);
    if (req->trace.state != NULL) {
        push(&hb, "tracestate: ", 12, req->trace.state, ts_len, "", 0);
    }
    push(&hb, th, strlen(th), ": ", 2, req->trace.id, strlen(req->trace.id));
    push(&hb, "X-Request-Timeout-Ms: ", 22, budget, (size_t)blen, "", 0);
    /* An empty value removes what curl would add on its own. */
    PUSH_LIT(&hb, "Expect:");
    if (!has_header(r, "Accept")) {
        PUSH_LIT(&hb, "Accept:");
    }
    if (!has_header(r, "Content-Type")) {
        PUSH_LIT(&hb, "Content-Type:");
    }
    call->headers = hb.nodes;
    return TG_OK;
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

    if (n > call->send_len - call->send_off) {
        n = call->send_len - call->send_off;
    }
    memcpy(buf, call->send + call->send_off, n);
    call->send_off += n;
    return n;
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

static void set_method(struct tg_up_call *call, const struct tg_up_request *r)
{
    CURL *easy = call->easy;

    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(r->method, "GET") == 0 && r->body_len == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    if (is_idempotent(r->method)) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r->body_len > 0 ? r->body : "");
    } else {
        /* Sent through a callback that cannot rewind: curl's silent resend of a request on a
         * fresh connection would deliver a submission twice. */
        call->send = r->body;
        call->send_len = r->body_len;
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read_body);
        curl_easy_setopt(easy, CURLOPT_READDATA, call);
        curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek_body);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, call);
    }
    if (strcmp(r->method, "POST") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

static void set_options(struct tg_up_call *call, const struct tg_up_request *r)
{
    CURL *easy = call->easy;

    curl_easy_setopt(easy, CURLOPT_URL, r->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* Upstreams are reached directly: no proxy from the environment (and no getenv per call). */
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, call->up);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, call->up);
    /* A total deadline, not an inactivity timer: a trickling backend is cut when it expires. */
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)call->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 1000));
    set_method(call, r);
}

/* The counter of label, made on first use; -1 when out of memory (the call is then not
 * limited rather than refused). A handful of upstreams: a linear scan is the cheap way. */
static long count_index(struct tg_up *up, const char *label)
{
    struct label_count *p;

    for (size_t i = 0; i < up->n_counts; i++) {
        if (strcmp(up->counts[i].name, label) == 0) {
            return (long)i;
        }
    }
    p = realloc(up->counts, (up->n_counts + 1) * sizeof(*p));
    if (p == NULL) {
        return -1;
    }
    up->counts = p;
    p[up->n_counts].name = strdup(label);
    if (p[up->n_counts].name == NULL) {
        return -1;
    }
    p[up->n_counts].n = 0;
    return (long)up->n_counts++;
}

int tg_up_start(struct tg_up *up, struct tg_req *req, const struct tg_up_request *r,
                tg_up_done_fn *done, void *arg, struct tg_up_call **out)
{
    struct tg_up_call *call = NULL;
    uint64_t left = tg_req_remaining_ms(req);
    long idx;
    int rc = TG_ENOMEM;

    if (req->cancelled) {
        return TG_ECANCELED;
    }
    if (left == 0) {
        return TG_ETIMEDOUT;
    }
    idx = r->max_in_flight > 0 && r->limit_key != NULL ? count_index(up, r->limit_key) : -1;
    if (idx >= 0 && up->counts[idx].n >= r->max_in_flight) {
        return TG_EOVERLOAD;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        goto out;
    }
    call->up = up;
    call->req = req;
    call->done = done;
    call->arg = arg;
    call->label = r->label;
    call->body.limit = r->max_body;
    tg_list_init(&call->link);
    call->timeout_ms = r->timeout_ms > 0 && r->timeout_ms < left ? r->timeout_ms
                       : left > 86400000u                        ? 86400000u
                                                                 : (unsigned)left;
    call->easy = easy_get(up);
    if (call->easy == NULL || build_headers(call, r) != TG_OK) {
        goto out;
    }
    set_options(call, r);
    call->start_us = tg_now_us();
    if (curl_multi_add_handle(up->multi, call->easy) != CURLM_OK) {
        rc = TG_EINTERNAL;
        goto out;
    }
    tg_list_push(&req->calls, &call->link);
    req->pending++;
    call->count_idx = idx;
    if (idx >= 0) {
        up->counts[idx].n++;
    }
    if (req->stats != NULL) {
        TG_STAT_ADD(req->stats, upstream_calls, 1);
    }
    if (out != NULL) {
        *out = call;
    }
    call = NULL; /* owned by up->multi until done() has run */
    rc = TG_OK;
out:
    call_release(call);
    return rc;
}

void tg_up_cancel(struct tg_up_call *call, int err, const char *why)
{
    /* The analyzer loses track of tg_up_cancel_req unlinking each call it frees (a fresh head
     * every turn). NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
    call->detail = why != NULL ? why : tg_err_cancel_reason(err);
    /* Removing an unfinished transfer makes curl close its connection: the upstream sees it. */
    call_finish(call, err);
}

void tg_up_cancel_req(struct tg_req *req, int err)
{
    /* Re-read the head each time: a done callback may cancel other calls of req. Each
     * tg_up_cancel unlinks the call it frees from req->calls. */
    while (!tg_list_is_empty(&req->calls)) {
        struct tg_up_call *call = TG_LIST_ENTRY(req->calls.next, struct tg_up_call, link);
        tg_up_cancel(call, err, NULL);
    }
}

int tg_up_call_status(const struct tg_up_call *call)
{
    return call->status;
}

char *tg_up_call_take_body(struct tg_up_call *call, size_t *len)
{
    return tg_buf_steal(&call->body, len);
}

bool tg_up_call_header_next(const struct tg_up_call *call, size_t *pos, const char **name,
                            const char **value)
{
    return tg_resp_header_next(&call->rh, pos, name, value);
}

bool tg_up_call_sent(const struct tg_up_call *call)
{
    return call->sent;
}

const char *tg_up_call_detail(const struct tg_up_call *call)
{
    return call->detail;
}
