/* HTTPS on the front end: a key pair made for the test, curl over TLS, and the upstream told
 * the client came over https. */
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

static void setup(void)
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
    fixture_gateway_start(&fx, "tls.json", vars, 2);
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

Test(tls, plain_http_on_the_tls_port_gets_no_answer)
{
    struct http_resp r;

    http_do(fx.gw.ports[0], "GET", "/api/x", NULL, NULL, 0, 2000, &r);
    cr_expect_neq(r.status, 200);
    http_resp_free(&r);
}
