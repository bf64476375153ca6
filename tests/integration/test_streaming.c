/* Bodies that stream through the gateway (conf/streaming.json: above 64 KiB, 64 KiB rings):
 * answers from the upstream to the client and request bodies from the client to the upstream,
 * byte for byte, Content-Length and chunked; flow control both ways (a slow client holds the
 * upstream back, a slow upstream the client); the client leaving mid-stream; the idle timeout
 * and the deadline before the head; the final status of a cut answer. The stub's pattern
 * bodies (body_bytes) and its /_sink (hash and length of what it read) check the bytes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define MIB       ((size_t)1 << 20)
#define THRESHOLD 65536  /* limits.stream_above_bytes */
#define ROUTE_MAX 200000 /* max_body_bytes of /small */
#define IDLE_MS   400    /* stream_idle_timeout_ms of /idle */
#define FNV_INIT  0xcbf29ce484222325u
#define LEAVE_MS  1000 /* the upstream sees a leaving client within this (measured: ~1 ms) */

static struct fixture fx;

static void setup(void)
{
    const char *specs[] = {"0:test"};

    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "streaming.json", NULL, 0);
}

static void teardown(void)
{
    fixture_stop(&fx);
}

TestSuite(streaming, .init = setup, .fini = teardown, .timeout = 120);

/* ---- bytes ------------------------------------------------------------------------------- */

/* FNV-1a, the stub's body_sha. */
static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    }
    return h;
}

/* The hash of n bytes of the stub's pattern (byte i is 'a' + i % 26). */
static uint64_t pattern_hash(size_t n)
{
    uint64_t h = FNV_INIT;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)('a' + i % 26)) * 0x100000001b3u;
    }
    return h;
}

/* n bytes that are no pattern: an upload whose every byte counts. Caller frees. */
static char *noise(size_t n)
{
    char *p = malloc(n);
    uint64_t x = 0x9E3779B97F4A7C15u;

    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (char)(x & 0xff);
    }
    return p;
}

/* ---- the stub's side ----------------------------------------------------------------------- */

/* A counter of the stub's /_stub/stats ("body_bytes_sent", "body_bytes_sunk"). */
static long long stub_stat(const char *name)
{
    struct http_resp r;
    json_t *j;
    long long v;

    cr_assert_eq(http_do(fx.stub.ports[0], "GET", "/_stub/stats", NULL, NULL, 0, 0, &r), 0);
    j = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(j, "%s", r.body);
    v = json_integer_value(json_object_get(j, name));
    json_decref(j);
    http_resp_free(&r);
    return v;
}

/* When the stub recorded the close of a connection it served (t_us, CLOCK_MONOTONIC), waiting
 * up to timeout_ms; 0 when none came. *by gets who closed it ("peer": the gateway). */
static uint64_t stub_close_us(int timeout_ms, char *by, size_t cap)
{
    uint64_t until = now_us() + (uint64_t)timeout_ms * 1000u;

    for (;;) {
        json_t *all = stub_records(fx.record);
        size_t i;
        json_t *o;
        uint64_t t = 0;
        json_array_foreach(all, i, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "event")), "close") == 0) {
                t = (uint64_t)json_integer_value(json_object_get(o, "t_us"));
                snprintf(by, cap, "%s", json_string_value(json_object_get(o, "by")));
            }
        }
        json_decref(all);
        if (t != 0 || now_us() >= until) {
            return t;
        }
        usleep(10000);
    }
}

/* The stub's record of the request to target_prefix (a new reference), or NULL. */
static json_t *stub_request(const char *target_prefix)
{
    json_t *all = stub_records(fx.record);
    json_t *found = NULL;
    size_t i;
    json_t *o;

    json_array_foreach(all, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "target"));
        if (strcmp(json_string_value(json_object_get(o, "event")), "request") == 0 && t != NULL &&
            strncmp(t, target_prefix, strlen(target_prefix)) == 0) {
            found = o;
        }
    }
    json_incref(found);
    json_decref(all);
    return found;
}

/* The gateway's resident memory, KiB. */
static long gateway_rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)fx.gw.pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return kib;
}

/* ---- a streamed download by libcurl ---------------------------------------------------------- */

struct get {
    const char *target;
    long rate;     /* bytes a second the client reads at during its first slow_ms; 0: at once */
    long slow_ms;  /* how long it reads slowly */
    long leave_ms; /* the client closes its connection at its first bytes after this; 0: never */
    bool http10;   /* asks in HTTP/1.0: no chunks, an answer of unknown length ends with a close */
    /* what came back */
    long status;
    int curl_rc;
    size_t got; /* body bytes */
    uint64_t hash;
    double first_ms; /* from the request to the first body byte */
    double total_ms;
    char te[64]; /* the answer's Transfer-Encoding, or "" */
    char cl[32]; /* its Content-Length, or "" */
    uint64_t t0;
    uint64_t end_us; /* when the transfer ended (with leave_ms: when the client left) */
};

static size_t get_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct get *g = userp;
    size_t n = size * nmemb;
    uint64_t now = now_us();

    if (g->got == 0) {
        g->first_ms = (double)(now - g->t0) / 1000.0;
    }
    if (g->leave_ms > 0 && now - g->t0 >= (uint64_t)g->leave_ms * 1000u) {
        return 0; /* curl fails the transfer and closes the connection */
    }
    g->hash = fnv(g->hash, data, n);
    g->got += n;
    if (g->rate > 0 && now - g->t0 < (uint64_t)g->slow_ms * 1000u) {
        /* a slow reader: the next bytes are read when this many should have taken so long */
        uint64_t due = g->t0 + (uint64_t)g->got * 1000000u / (uint64_t)g->rate;
        if (due > now) {
            usleep((useconds_t)(due - now));
        }
    }
    return n;
}

static size_t get_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct get *g = userp;
    size_t n = size * nmemb;

    if (n > 19 && strncasecmp(data, "Transfer-Encoding: ", 19) == 0) {
        snprintf(g->te, sizeof(g->te), "%.*s", (int)(n - 21), data + 19);
    }
    if (n > 16 && strncasecmp(data, "Content-Length: ", 16) == 0) {
        snprintf(g->cl, sizeof(g->cl), "%.*s", (int)(n - 18), data + 16);
    }
    return n;
}

static void *get_run(void *arg)
{
    struct get *g = arg;
    CURL *c = curl_easy_init();
    char url[512];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx.gw.ports[0], g->target);
    g->hash = FNV_INIT;
    g->t0 = now_us();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, get_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, get_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L); /* its connection closes when it ends */
    if (g->http10) {
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
    }
    g->curl_rc = (int)curl_easy_perform(c);
    g->end_us = now_us();
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g->status);
    g->total_ms = (double)(g->end_us - g->t0) / 1000.0;
    curl_easy_cleanup(c);
    return NULL;
}

/* ---- raw connections ------------------------------------------------------------------------- */

/* Sends "GET target" and reads until the head and want body bytes are in (or 10 s passed).
 * Returns the fd, still open; *body gets how many body bytes came. */
static int raw_get(const char *target, size_t want, size_t *body)
{
    int fd = tcp_connect(fx.gw.ports[0]);
    char req[512];
    char buf[65536];
    size_t total = 0, head = 0;
    uint64_t until = now_us() + 10000000u;

    cr_assert_geq(fd, 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    cr_assert_eq(tcp_send(fd, req, strlen(req)), 0);
    while (now_us() < until && (head == 0 || total - head < want)) {
        ssize_t n = recv(fd, buf, head == 0 ? 4096 : sizeof(buf), head == 0 ? MSG_PEEK : 0);
        if (n <= 0) {
            break;
        }
        if (head == 0) {
            char *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
            size_t take = end != NULL ? (size_t)(end - buf) + 4 : (size_t)n;
            cr_assert_eq(recv(fd, buf, take, 0), (ssize_t)take);
            total += take;
            head = end != NULL ? total : 0;
            cr_assert(head == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0, "%.80s", buf);
            continue;
        }
        total += (size_t)n;
    }
    *body = head > 0 ? total - head : 0;
    return fd;
}

/* POSTs n bytes of p to target over a new connection, with a Content-Length or chunked (in
 * chunk-byte chunks); pause_after > 0 stops after that many bytes for pause_ms first, and
 * *during gets the stub's sink count then. Returns the answer (status line, head and body),
 * malloc'd. */
struct upload {
    const char *target;
    const char *p;
    size_t n;
    size_t chunk; /* 0: Content-Length */
    size_t pause_after;
    int pause_ms;
    long long during; /* body_bytes_sunk seen in the pause */
};

static char *upload(struct upload *u)
{
    int fd = tcp_connect(fx.gw.ports[0]);
    char head[512];
    size_t off = 0;
    size_t len;
    char *resp;

    cr_assert_geq(fd, 0);
    if (u->chunk == 0) {
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                 u->target, u->n);
    } else {
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                 u->target);
    }
    cr_assert_eq(tcp_send(fd, head, strlen(head)), 0);
    while (off < u->n) {
        size_t k = u->chunk > 0 ? u->chunk : 65536;
        char size[32];
        k = u->n - off < k ? u->n - off : k;
        if (u->chunk > 0) {
            int hn = snprintf(size, sizeof(size), "%zx\r\n", k);
            if (tcp_send(fd, size, (size_t)hn) != 0) {
                break;
            }
        }
        if (tcp_send(fd, u->p + off, k) != 0 || (u->chunk > 0 && tcp_send(fd, "\r\n", 2) != 0)) {
            break;
        }
        off += k;
        if (u->pause_after > 0 && off >= u->pause_after && off - k < u->pause_after) {
            usleep((useconds_t)u->pause_ms * 1000u);
            u->during = stub_stat("body_bytes_sunk");
        }
    }
    if (u->chunk > 0) {
        tcp_send(fd, "0\r\n\r\n", 5);
    }
    resp = tcp_read_all(fd, 20000, &len);
    close(fd);
    return resp;
}

/* The JSON body of a raw answer (a new reference). */
static json_t *answer_json(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    json_t *j = b != NULL ? json_loads(b + 4, 0, NULL) : NULL;

    cr_assert_not_null(j, "no JSON body: %.300s", resp);
    return j;
}

/* ---- answers --------------------------------------------------------------------------------- */

Test(streaming, answer_with_content_length_is_byte_exact)
{
    struct get g = {.target = "/s/x?body_bytes=4194304"};

    get_run(&g);
    cr_assert_eq(g.curl_rc, 0, "curl %d", g.curl_rc);
    cr_expect_eq(g.status, 200);
    cr_expect_str_eq(g.cl, "4194304", "the upstream's length goes on as the answer's");
    cr_expect_str_eq(g.te, "");
    cr_assert_eq(g.got, 4 * MIB);
    cr_expect_eq(g.hash, pattern_hash(4 * MIB), "bytes changed on the way");
}

Test(streaming, answer_of_unknown_length_goes_chunked_and_byte_exact)
{
    struct get g = {.target = "/s/x?body_bytes=4194304&chunked=1"};
    const char *done[] = {"\"event\":\"request.done\"", "\"status\":200", "\"bytes_out\":4194304",
                          NULL};

    get_run(&g);
    cr_assert_eq(g.curl_rc, 0, "curl %d", g.curl_rc);
    cr_expect_eq(g.status, 200);
    cr_expect_str_eq(g.te, "chunked");
    cr_expect_str_eq(g.cl, "");
    cr_assert_eq(g.got, 4 * MIB);
    cr_expect_eq(g.hash, pattern_hash(4 * MIB));
    cr_expect_eq(proc_log_wait(&fx.gw, done, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* An HTTP/1.0 client cannot take chunks: an answer of unknown length comes whole and ends with
 * the connection's close (libmicrohttpd reads it through the response's own block then). */
Test(streaming, answer_of_unknown_length_to_an_http10_client_ends_with_a_close)
{
    struct get g = {.target = "/s/x?body_bytes=4194304&chunked=1", .http10 = true};

    get_run(&g);
    cr_assert_eq(g.curl_rc, 0, "curl %d", g.curl_rc);
    cr_expect_eq(g.status, 200);
    cr_expect_str_eq(g.te, "");
    cr_expect_str_eq(g.cl, "");
    cr_assert_eq(g.got, 4 * MIB);
    cr_expect_eq(g.hash, pattern_hash(4 * MIB), "bytes changed on the way");
}

/* An answer past max_response_bytes (1 MiB here) streams; held whole (stream: false) it is
 * refused, as before streaming. */
Test(streaming, max_response_bytes_binds_only_answers_held_whole)
{
    struct get g = {.target = "/s/x?body_bytes=2097152"};
    struct http_resp r;

    get_run(&g);
    cr_expect_eq(g.status, 200);
    cr_expect_eq(g.got, 2 * MIB);
    cr_assert_eq(
        http_do(fx.gw.ports[0], "GET", "/whole/x?body_bytes=2097152", NULL, NULL, 0, 0, &r), 0);
    cr_expect_eq(r.status, 502, "%s", r.body);
    cr_expect(strstr(r.body, "upstream response too large") != NULL, "%s", r.body);
    http_resp_free(&r);
}

/* The client's first bytes come while the upstream still sends (2 MiB at 1 MiB/s). */
Test(streaming, first_bytes_arrive_while_the_upstream_still_sends)
{
    struct get g = {.target = "/s/x?body_bytes=2097152&send_rate=1048576"};

    get_run(&g);
    cr_assert_eq(g.curl_rc, 0);
    cr_expect_eq(g.hash, pattern_hash(2 * MIB));
    cr_expect_gt(g.total_ms, 1500.0, "the stub was not paced: %.0f ms", g.total_ms);
    cr_expect_lt(g.first_ms, 700.0, "first body byte after %.0f ms of %.0f", g.first_ms,
                 g.total_ms);
}

/* The budget covers the time to the answer's head, not a long body after it (300 ms route,
 * 1 s of body); a head that does not come in time is a 504. */
Test(streaming, budget_covers_the_head_not_the_stream)
{
    struct get g = {.target = "/short/x?body_bytes=1048576&send_rate=1048576&chunked=1"};
    struct http_resp r;

    get_run(&g);
    cr_expect_eq(g.curl_rc, 0, "curl %d", g.curl_rc);
    cr_expect_eq(g.status, 200);
    cr_expect_gt(g.total_ms, 700.0);
    cr_expect_eq(g.hash, pattern_hash(MIB));
    cr_assert_eq(http_do(fx.gw.ports[0], "GET", "/short/x?body_bytes=4194304&delay_ms=3000", NULL,
                         NULL, 0, 0, &r),
                 0);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_lt(r.total_ms, 2000.0);
    http_resp_free(&r);
}

/* A client reading 2 MiB/s holds the upstream back: after 2 s the stub has sent what the
 * sockets on the way hold, not the 256 MiB, and the gateway's memory did not grow with it. Then
 * the client leaves mid-stream (the gateway is blocked sending to it): the upstream's connection
 * closes at once, and the request is a 499. */
Test(streaming, slow_reader_holds_the_upstream_back)
{
    struct get g = {.target = "/s/x?body_bytes=268435456",
                    .rate = 2 * (long)MIB,
                    .slow_ms = 60000,
                    .leave_ms = 3000};
    const char *gone[] = {"\"event\":\"request.done\"", "\"status\":499", NULL};
    pthread_t t;
    long rss0 = gateway_rss_kib();
    long long sent;
    long rss;
    char by[16] = "";
    uint64_t closed;

    cr_assert_eq(pthread_create(&t, NULL, get_run, &g), 0);
    usleep(2000000);
    sent = stub_stat("body_bytes_sent");
    rss = gateway_rss_kib();
    cr_expect_lt(sent, 96LL << 20, "the stub sent %lld bytes to a client that read %zu", sent,
                 g.got);
    cr_expect_gt(sent, 1LL << 20);
    cr_expect_lt(rss - rss0, 16L * 1024, "gateway RSS grew %ld KiB", rss - rss0);
    pthread_join(t, NULL);
    cr_expect_eq(g.curl_rc, CURLE_WRITE_ERROR, "curl %d", g.curl_rc);
    closed = stub_close_us(3000, by, sizeof(by));
    cr_assert_neq(closed, 0, "the upstream connection stayed open");
    cr_expect_lt((double)closed - (double)g.end_us, LEAVE_MS * 1000.0,
                 "the upstream was closed %.0f ms after the client left",
                 ((double)closed - (double)g.end_us) / 1000.0);
    cr_expect_str_eq(by, "peer");
    cr_expect_eq(proc_log_wait(&fx.gw, gone, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* The client leaves while the gateway waits on a stalled upstream (its connection suspended,
 * the ring empty): the hang-up watch sees it, the upstream connection closes at once. */
Test(streaming, client_leaving_a_stalled_stream_closes_the_upstream)
{
    size_t body = 0;
    int fd = raw_get("/s/x?body_bytes=4194304&stall_after=1048576", MIB, &body);
    const char *gone[] = {"\"event\":\"request.done\"", "\"status\":499", NULL};
    char by[16] = "";
    uint64_t left, closed;

    cr_expect_eq(body, MIB, "got %zu body bytes", body);
    usleep(200000);
    left = now_us();
    close(fd);
    closed = stub_close_us(3000, by, sizeof(by));
    cr_assert_neq(closed, 0, "the upstream connection stayed open");
    cr_expect_lt((double)closed - (double)left, LEAVE_MS * 1000.0, "closed %.0f ms after",
                 ((double)closed - (double)left) / 1000.0);
    cr_expect_eq(proc_log_wait(&fx.gw, gone, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* An upstream silent past the idle timeout after its head, or reset: the answer (status 200
 * already sent) is cut, the client sees it short, and the log says why with the status it got.
 * A reset may lose what was in flight: the client gets at most the bytes sent before the cut. */
static void expect_cut(const char *target, bool exact, const char *err, const char *reason)
{
    struct get g = {.target = target};
    const char *done[] = {
        "\"event\":\"request.done\"", "\"status\":200", err, reason, "\"truncated\":true", NULL};
    char by[16] = "";

    get_run(&g);
    cr_expect_eq(g.status, 200);
    cr_expect_eq(g.curl_rc, CURLE_PARTIAL_FILE, "curl %d", g.curl_rc);
    if (exact) {
        cr_expect_eq(g.got, MIB, "got %zu bytes", g.got);
    } else {
        cr_expect_leq(g.got, MIB, "got %zu bytes", g.got);
    }
    cr_expect_eq(g.hash, pattern_hash(g.got));
    cr_expect_eq(proc_log_wait(&fx.gw, done, 1, 3000), 1, "log %s", fx.gw.log_path);
    cr_expect_neq(stub_close_us(3000, by, sizeof(by)), 0, "the upstream connection stayed open");
}

Test(streaming, stall_past_the_idle_timeout_cuts_the_answer)
{
    uint64_t t0 = now_us();

    expect_cut("/idle/x?body_bytes=4194304&stall_after=1048576", true,
               "\"err\":\"upstream timeout\"", "\"reason\":\"stream idle timeout\"");
    cr_expect_gt(now_us() - t0, (uint64_t)IDLE_MS * 1000u, "cut before the idle timeout");
}

Test(streaming, stall_of_a_chunked_answer_cuts_it_too)
{
    expect_cut("/idle/x?body_bytes=4194304&stall_after=1048576&chunked=1", true,
               "\"err\":\"upstream timeout\"", "\"reason\":\"stream idle timeout\"");
}

Test(streaming, reset_mid_stream_cuts_the_answer)
{
    expect_cut("/s/x?body_bytes=4194304&reset_after=1048576&chunked=1", false,
               "\"err\":\"upstream unavailable\"", "\"reason\":");
}

/* A slow upstream is not idle while the client is the slow side: 1 MiB read over ~1.5 s on a
 * route whose idle timeout is 400 ms. */
Test(streaming, slow_client_is_not_an_idle_upstream)
{
    struct get g = {.target = "/idle/x?body_bytes=1572864", .rate = (long)MIB, .slow_ms = 60000};

    get_run(&g);
    cr_expect_eq(g.curl_rc, 0, "curl %d", g.curl_rc);
    cr_expect_eq(g.got, 3 * MIB / 2);
    cr_expect_eq(g.hash, pattern_hash(3 * MIB / 2));
}

/* ---- request bodies -------------------------------------------------------------------------- */

static void expect_sunk(const char *resp, const char *p, size_t n)
{
    json_t *j = answer_json(resp);
    char sha[32];

    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
    snprintf(sha, sizeof(sha), "%016llx", (unsigned long long)fnv(FNV_INIT, p, n));
    cr_expect_eq(json_integer_value(json_object_get(j, "body_len")), (json_int_t)n);
    cr_expect_str_eq(json_string_value(json_object_get(j, "body_sha")), sha);
    json_decref(j);
}

/* 8 MiB with a Content-Length: the upstream call starts with the headers (the stub has bytes
 * while the client pauses half-way), and the body arrives whole, with its length. */
Test(streaming, upload_with_content_length_streams_and_arrives_intact)
{
    size_t n = 8 * MIB;
    char *p = noise(n);
    struct upload u = {
        .target = "/s/_sink", .p = p, .n = n, .pause_after = 4 * MIB, .pause_ms = 300};
    char *resp = upload(&u);
    json_t *rec = stub_request("/_sink");

    expect_sunk(resp, p, n);
    cr_expect_gt(u.during, 0, "the upstream had nothing before the body was complete");
    cr_expect_lt(u.during, (long long)n);
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "Content-Length"), "8388608");
    cr_expect_null(record_header(rec, "Transfer-Encoding"));
    json_decref(rec);
    free(resp);
    free(p);
}

/* A chunked body past the threshold streams chunked, what came first included. */
Test(streaming, chunked_upload_streams_and_arrives_intact)
{
    size_t n = 8 * MIB + 12345;
    char *p = noise(n);
    struct upload u = {.target = "/s/_sink",
                       .p = p,
                       .n = n,
                       .chunk = 40000,
                       .pause_after = 2 * MIB,
                       .pause_ms = 300};
    char *resp = upload(&u);
    json_t *rec = stub_request("/_sink");

    expect_sunk(resp, p, n);
    cr_expect_gt(u.during, 0);
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "Transfer-Encoding"), "chunked");
    json_decref(rec);
    free(resp);
    free(p);
}

/* A chunked body that stays under the threshold is held whole: the upstream gets a length. */
Test(streaming, small_chunked_upload_is_held_whole)
{
    size_t n = THRESHOLD;
    char *p = noise(n);
    struct upload u = {.target = "/s/_sink", .p = p, .n = n, .chunk = 1000};
    char *resp = upload(&u);
    json_t *rec = stub_request("/_sink");

    expect_sunk(resp, p, n);
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "Content-Length"), "65536");
    json_decref(rec);
    free(resp);
    free(p);
}

/* An upstream reading 8 MiB/s holds a fast client back: the gateway keeps no more than its
 * ring, whatever the body. */
Test(streaming, slow_upstream_holds_the_client_back)
{
    size_t n = 24 * MIB;
    char *p = noise(n);
    struct upload u = {.target = "/s/_sink?read_rate=8388608", .p = p, .n = n};
    long rss0 = gateway_rss_kib();
    char *resp = upload(&u);

    expect_sunk(resp, p, n);
    cr_expect_lt(gateway_rss_kib() - rss0, 16L * 1024, "gateway RSS grew");
    free(resp);
    free(p);
}

/* Past the route's max_body_bytes mid-stream: 413, and the upstream never got a whole body
 * (its connection was cut while it read). */
Test(streaming, chunked_upload_over_the_limit_is_413_and_cut)
{
    size_t n = (size_t)2 * ROUTE_MAX;
    char *p = noise(n);
    struct upload u = {.target = "/small/_sink", .p = p, .n = n, .chunk = 10000};
    char *resp = upload(&u);
    char by[16] = "";

    cr_expect(strncmp(resp, "HTTP/1.1 413", 12) == 0, "%.200s", resp);
    cr_expect_neq(stub_close_us(3000, by, sizeof(by)), 0);
    cr_expect_null(stub_request("/_sink"), "the upstream got a whole request");
    free(resp);
    free(p);
}

/* An upstream that stops reading a streamed body: the idle timeout ends the call, 504. */
Test(streaming, upstream_not_reading_the_body_is_504)
{
    size_t n = 64 * MIB;
    char *p = noise(n);
    struct upload u = {.target = "/idle/_sink?read_rate=1", .p = p, .n = n};
    const char *done[] = {"\"event\":\"request.done\"", "\"status\":504",
                          "\"reason\":\"stream idle timeout\"", NULL};
    char *resp = upload(&u);

    cr_expect(strncmp(resp, "HTTP/1.1 504", 12) == 0, "%.200s", resp);
    cr_expect_eq(proc_log_wait(&fx.gw, done, 1, 3000), 1, "log %s", fx.gw.log_path);
    free(resp);
    free(p);
}
