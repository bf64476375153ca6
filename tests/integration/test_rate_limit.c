/* Per-client rate limits (429 with Retry-After), buckets shared by the workers, keyed by the
 * token's subject or the client address; the client address behind trusted proxies, and an
 * untrusted X-Forwarded-For replaced, not extended. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/jwt.h"
#include "tests/support/proc.h"
#include "tests/support/stub_ctl.h"

#define SECRET "rate-limit-secret-rate-limit-secret-0123"

static struct fixture fx;
static char dir[128];

static void setup(void)
{
    const char *specs[] = {"0:test"};
    char secret[256];
    const struct conf_var vars[] = {{"SECRET_FILE", secret}};
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/tg-rate-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(secret, sizeof(secret), "%s/hs.key", dir);
    f = fopen(secret, "w");
    cr_assert_not_null(f);
    fputs(SECRET, f);
    fclose(f);
    fixture_stub_start(&fx, specs, 1, true);
    fixture_gateway_start(&fx, "rate_limit.json", vars, 1);
}

static void teardown(void)
{
    char cmd[256];

    fixture_stop(&fx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(rate_limit, .init = setup, .fini = teardown, .timeout = 60);

static long get(const char *target, const char *header, struct http_resp *out)
{
    const char *hdrs[] = {header, NULL};
    struct http_resp r;
    long status;

    http_do(fx.gw.ports[0], "GET", target, header != NULL ? hdrs : NULL, NULL, 0, 5000, &r);
    status = r.status;
    if (out != NULL) {
        *out = r;
    } else {
        http_resp_free(&r);
    }
    return status;
}

Test(rate_limit, a_client_past_its_burst_gets_429_with_retry_after)
{
    struct http_resp r;
    char after[32];
    json_t *j;

    cr_expect_eq(get("/limited", NULL, NULL), 200);
    cr_expect_eq(get("/limited", NULL, NULL), 200);
    cr_assert_eq(get("/limited", NULL, &r), 429, "%s", r.body);
    cr_assert_not_null(http_header(&r, "Retry-After", after, sizeof(after)));
    cr_expect_geq(strtol(after, NULL, 10), 1);
    j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "too many requests");
    cr_expect(json_is_string(json_object_get(j, "trace_id")));
    json_decref(j);
    http_resp_free(&r);
    /* Another client behind the trusted proxy has a bucket of its own. */
    cr_expect_eq(get("/limited", "X-Forwarded-For: 203.0.113.7", NULL), 200);
    /* A token refills in a second. */
    usleep(1100000);
    cr_expect_eq(get("/limited", NULL, NULL), 200);
}

/* New connections spread over both workers (SO_REUSEPORT): the bucket is one. */
Test(rate_limit, the_workers_share_one_bucket)
{
    int ok = 0;

    for (int i = 0; i < 12; i++) {
        ok += get("/shared", "X-Forwarded-For: 198.51.100.1", NULL) == 200;
    }
    cr_expect(ok >= 5 && ok <= 6, "%d of 12 passed with a burst of 5", ok);
}

static char *token_for(const char *sub)
{
    char extra[64];
    char *c;
    char *t;

    snprintf(extra, sizeof(extra), "{\"sub\":\"%s\"}", sub);
    c = jwt_claims("https://local.test", NULL, 300, extra);
    t = jwt_sign_hmac(SECRET, strlen(SECRET), "HS256", NULL, c);
    free(c);
    return t;
}

Test(rate_limit, routes_with_auth_count_by_the_tokens_subject)
{
    char *alice = token_for("alice");
    char *bob = token_for("bob");
    char ha[1024];
    char hb[1024];

    snprintf(ha, sizeof(ha), "Authorization: Bearer %s", alice);
    snprintf(hb, sizeof(hb), "Authorization: Bearer %s", bob);
    cr_expect_eq(get("/by-subject", ha, NULL), 200);
    cr_expect_eq(get("/by-subject", ha, NULL), 429);
    cr_expect_eq(get("/by-subject", hb, NULL), 200, "same address, another subject");
    free(alice);
    free(bob);
}

/* The last request the stub got (caller decrefs). */
static json_t *last_request(void)
{
    return stub_last_request(fx.record, NULL);
}

Test(rate_limit, trusted_proxies_name_the_client_and_extend_the_chain)
{
    const char *line[] = {"\"event\":\"request.done\"", "\"client\":\"198.51.100.9\"", NULL};
    json_t *rec;

    cr_expect_eq(get("/raw/x", "X-Forwarded-For: 6.6.6.6, 198.51.100.9, 10.1.2.3", NULL), 200);
    rec = last_request();
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "X-Forwarded-For"),
                     "6.6.6.6, 198.51.100.9, 10.1.2.3, 127.0.0.1");
    json_decref(rec);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* A request from 127.0.0.2, which is no trusted proxy. */
static char *from_untrusted(const char *req)
{
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct sockaddr_in dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = 0;
    char *got;

    cr_assert_geq(fd, 0);
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)fx.gw.ports[0]);
    cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
    cr_assert_eq(tcp_send(fd, req, strlen(req)), 0);
    got = tcp_read_all(fd, 5000, &len);
    close(fd);
    return got;
}

Test(rate_limit, an_untrusted_forwarded_for_is_replaced)
{
    const char *line[] = {"\"event\":\"request.done\"", "\"client\":\"127.0.0.2\"", NULL};
    char *got = from_untrusted("GET /raw/u HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 6.6.6.6\r\n"
                               "Connection: close\r\n\r\n");
    json_t *rec;

    cr_expect_eq(strncmp(got, "HTTP/1.1 200", 12), 0, "%s", got);
    rec = last_request();
    cr_assert_not_null(rec);
    cr_expect_str_eq(record_header(rec, "X-Forwarded-For"), "127.0.0.2");
    json_decref(rec);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 3000), 1, "log %s", fx.gw.log_path);
    free(got);
}
