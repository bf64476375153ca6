/* HTTPS on the front end: a key pair made for the test, curl over TLS, and the upstream told
 * the client came over https; the version floor, plain HTTP on the TLS port, and a certificate
 * renewed on SIGHUP. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/support/client.h"
#include "tests/support/conf_template.h"
#include "tests/support/fixture.h"
#include "tests/support/proc.h"

static struct fixture fx;
static char dir[128];

static void setup_with(const char *tmpl)
{
    const char *specs[] = {"0:test"};
    char cmd[1024];
    char cert[256];
    char key[256];
    const struct conf_var vars[] = {{"TLS_CERT", cert}, {"TLS_KEY", key}};

    snprintf(dir, sizeof(dir), "/tmp/tg-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    cr_assert_eq(system(cmd), 0, "openssl failed");
    fixture_stub_start(&fx, specs, 1, false);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    fixture_gateway_start(&fx, tmpl, vars, 2);
}

static void setup(void)
{
    setup_with("tls.json");
}

static void teardown(void)
{
    char cmd[256];

    cr_expect_eq(proc_stop(&fx.gw, SIGTERM, 10000), 0, "log %s", fx.gw.log_path);
    proc_stop(&fx.stub, SIGTERM, 5000);
    unlink(fx.conf_path);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

struct sink {
    char buf[65536];
    size_t len;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *userp)
{
    struct sink *s = userp;
    size_t n = size * nmemb;

    if (s->len + n < sizeof(s->buf)) {
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        s->buf[s->len] = '\0';
    }
    return n;
}

Test(tls, https_request_is_proxied_and_marked_https)
{
    CURL *c = curl_easy_init();
    struct sink *s = calloc(1, sizeof(*s));
    char url[128];
    long status = 0;
    json_t *j;
    size_t i;
    json_t *pair;
    const char *proto = NULL;

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/secure?x=1", fx.gw.ports[0]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_expect_eq(status, 200);
    j = json_loads(s->buf, 0, NULL);
    cr_assert_not_null(j, "%s", s->buf);
    cr_expect_str_eq(json_string_value(json_object_get(j, "target")), "/secure?x=1");
    json_array_foreach(json_object_get(j, "headers"), i, pair)
    {
        if (strcasecmp(json_string_value(json_array_get(pair, 0)), "X-Forwarded-Proto") == 0) {
            proto = json_string_value(json_array_get(pair, 1));
        }
    }
    cr_expect_str_eq(proto, "https");
    json_decref(j);
    curl_easy_cleanup(c);
    free(s);
}

/* NGINX's answer to plain HTTP on an HTTPS port: a 400 in clear text (the gateway's JSON
 * error), then the connection closes. */
Test(tls, plain_http_on_the_tls_port_is_a_json_400_and_closes)
{
    const char *line[] = {"\"event\":\"tls.plain_http\"", NULL};
    const char req[] = "GET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n";
    int fd = tcp_connect(fx.gw.ports[0]);
    size_t len = 0;
    char *got;
    json_t *j;

    cr_assert_geq(fd, 0);
    cr_assert_eq(tcp_send(fd, req, sizeof(req) - 1), 0);
    got = tcp_read_all(fd, 5000, &len); /* returns when the gateway closes */
    close(fd);
    cr_expect_eq(strncmp(got, "HTTP/1.1 400 ", 13), 0, "%s", got);
    cr_assert_not_null(strstr(got, "\r\n\r\n"), "%s", got);
    j = json_loads(strstr(got, "\r\n\r\n") + 4, 0, NULL);
    cr_assert_not_null(j, "%s", got);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")),
                     "plain HTTP request sent to the HTTPS port");
    cr_expect(json_is_string(json_object_get(j, "trace_id")));
    json_decref(j);
    free(got);
    cr_expect_eq(proc_log_wait(&fx.gw, line, 1, 3000), 1, "log %s", fx.gw.log_path);
}

/* What openssl's client negotiates with the gateway when it offers only one version, with the
 * security level lowered so that the client itself would allow TLS 1.1. */
static bool negotiates(const char *flag, const char *version)
{
    char cmd[512];
    char want[64];
    char line[256];
    bool seen = false;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "echo | timeout 10 openssl s_client -brief -connect 127.0.0.1:%d %s "
             "-cipher 'DEFAULT:@SECLEVEL=0' 2>&1",
             fx.gw.ports[0], flag);
    snprintf(want, sizeof(want), "Protocol version: %s\n", version);
    p = popen(cmd, "r"); /* NOLINT(cert-env33-c): a fixed command line of the test's own */
    cr_assert_not_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        seen |= strstr(line, want) != NULL;
    }
    pclose(p);
    return seen;
}

Test(tls, tls_1_2_is_the_default_minimum)
{
    cr_expect(negotiates("-tls1_2", "TLSv1.2"), "TLS 1.2 refused");
    cr_expect(negotiates("-tls1_3", "TLSv1.3"), "TLS 1.3 refused");
    cr_expect(!negotiates("-tls1_1", "TLSv1.1"), "TLS 1.1 accepted");
    cr_expect(!negotiates("-tls1", "TLSv1"), "TLS 1.0 accepted");
}

/* The subject of the certificate a new connection gets. */
static void new_connection_subject(char *out, size_t cap)
{
    char cmd[512];
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "echo | timeout 10 openssl s_client -connect 127.0.0.1:%d 2>/dev/null | "
             "openssl x509 -noout -subject",
             fx.gw.ports[0]);
    p = popen(cmd, "r"); /* NOLINT(cert-env33-c): a fixed command line of the test's own */
    cr_assert_not_null(p);
    out[0] = '\0';
    if (fgets(out, (int)cap, p) == NULL) {
        out[0] = '\0';
    }
    pclose(p);
}

/* SIGHUP with a renewed certificate: new handshakes get it, and a connection opened before
 * keeps working on the same socket. */
Test(tls, certificate_reloads_on_sighup_without_dropping_connections)
{
    const char *reloaded[] = {"\"event\":\"tls.reloaded\"", NULL};
    CURL *c = curl_easy_init();
    struct sink *s = calloc(1, sizeof(*s));
    char url[128];
    char cmd[1024];
    char subject[256];
    long status = 0;
    long opened = -1;

    new_connection_subject(subject, sizeof(subject));
    cr_expect_not_null(strstr(subject, "CN = localhost"), "%s", subject);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/keep", fx.gw.ports[0]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=renewed "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    cr_assert_eq(system(cmd), 0); /* NOLINT(cert-env33-c) */
    proc_signal(&fx.gw, SIGHUP);
    cr_assert_eq(proc_log_wait(&fx.gw, reloaded, 1, 5000), 1, "log %s", fx.gw.log_path);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "the open connection was dropped");
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &opened);
    cr_expect_eq(status, 200);
    cr_expect_eq(opened, 0, "the request after the reload needed a new connection");
    new_connection_subject(subject, sizeof(subject));
    cr_expect_not_null(strstr(subject, "CN = renewed"), "%s", subject);
    curl_easy_cleanup(c);
    free(s);
}

/* ---- tls.min_version 1.3 --------------------------------------------------------------------- */

static void setup13(void)
{
    setup_with("tls_min_version.json");
}

TestSuite(tls13, .init = setup13, .fini = teardown, .timeout = 60);

Test(tls13, min_version_1_3_refuses_tls_1_2)
{
    cr_expect(negotiates("-tls1_3", "TLSv1.3"), "TLS 1.3 refused");
    cr_expect(!negotiates("-tls1_2", "TLSv1.2"), "TLS 1.2 accepted");
}
