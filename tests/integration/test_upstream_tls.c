/* TLS to upstreams: certificates checked against tls.ca_file under tls.server_name, a client
 * certificate for servers that ask one (mTLS), verify:false only when the conf says so (and a
 * warning at start), and an unreadable file refused at start. The upstreams are openssl
 * s_server processes with a CA, a server and a client certificate made for the test. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/client.h"
#include "tests/support/clock.h"
#include "tests/support/conf_template.h"
#include "tests/support/proc.h"

#define OPENSSL "/usr/bin/openssl"

static char dir[128];
static char s1_text[16], s2_text[16];
static struct proc s1, s2, gw;
static char conf_path[128];
static const struct conf_var vars[] = {{"DIR", dir}, {"S1", s1_text}, {"S2", s2_text}};

/* A CA, a server certificate for upstream.test and a client certificate, all signed by it. */
static void make_certs(void)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd),
             "(cd '%s' && K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
             "openssl req -x509 $K -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem && "
             "openssl req $K -subj /CN=upstream.test -keyout server.key -out server.csr && "
             "printf 'subjectAltName=DNS:upstream.test\\n' > server.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile server.ext -out server.pem && "
             "openssl req $K -subj /CN=tracegate -keyout client.key -out client.csr && "
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-out client.pem) >/dev/null 2>&1",
             dir);
    cr_assert_eq(system(cmd), 0, "openssl failed"); /* NOLINT(cert-env33-c): a test fixture */
}

/* openssl s_server on a free port, asking for a client certificate when mtls; waits until it
 * accepts connections. */
static void start_server(struct proc *p, char *port_text, size_t cap, bool mtls)
{
    char accept[32], cert[192], key[192], ca[192];
    int port = tcp_free_port();
    const char *argv[] = {OPENSSL, "s_server", "-quiet",  "-www", "-accept", accept, "-cert", cert,
                          "-key",  key,        "-Verify", "1",    "-CAfile", ca,     NULL};
    uint64_t end = now_us() + 5000000u;
    int fd = -1;

    snprintf(port_text, cap, "%d", port);
    snprintf(accept, sizeof(accept), "127.0.0.1:%d", port);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    if (!mtls) {
        argv[10] = NULL; /* no -Verify */
    }
    cr_assert_eq(proc_spawn(p, argv, 0), 0, "s_server did not start: %s", p->log_path);
    while (now_us() < end && (fd = tcp_connect(port)) < 0) {
        usleep(20000);
    }
    cr_assert_geq(fd, 0, "s_server does not listen: %s", p->log_path);
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tg-uptls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    make_certs();
    start_server(&s1, s1_text, sizeof(s1_text), false);
    start_server(&s2, s2_text, sizeof(s2_text), true);
    conf_template_write(conf_path, sizeof(conf_path), "upstream_tls.json", vars, 3);
    cr_assert_eq(gateway_start(&gw, conf_path, NULL), 0, "gateway did not start: %s", gw.log_path);
}

static void teardown(void)
{
    char cmd[256];
    int rc = proc_stop(&gw, SIGTERM, 10000);

    cr_expect_eq(rc, 0, "gateway exit %d, log %s", rc, gw.log_path);
    proc_stop(&s1, SIGTERM, 5000); /* not ours: its exit status says nothing */
    proc_stop(&s2, SIGTERM, 5000);
    unlink(conf_path);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0); /* NOLINT(cert-env33-c): a test fixture */
}

TestSuite(upstream_tls, .init = setup, .fini = teardown, .timeout = 60);

static void expect(const char *path, long status, const char *reason)
{
    struct http_resp r;
    char needle[128];
    const char *needles[] = {"\"event\":\"upstream.done\"", needle, NULL};

    cr_assert_eq(http_do(gw.ports[0], "GET", path, NULL, NULL, 0, 5000, &r), 0);
    cr_expect_eq(r.status, status, "%s: %s", path, r.body);
    http_resp_free(&r);
    if (reason != NULL) {
        snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", reason);
        cr_expect_geq(proc_log_count(&gw, needles), 1, "%s: no %s in %s", path, needle,
                      gw.log_path);
    }
}

Test(upstream_tls, the_certificate_is_checked_under_the_server_name)
{
    expect("/verified", 200, NULL);
    expect("/untrusted", 502, "upstream certificate not trusted");
    expect("/wrong_name", 502, "upstream certificate not trusted");
}

Test(upstream_tls, verify_false_is_honoured_and_warned_at_start)
{
    const char *warn[] = {"\"event\":\"upstream.tls_insecure\"", "\"upstream\":\"insecure\"", NULL};

    expect("/insecure", 200, NULL);
    cr_expect_eq(proc_log_count(&gw, warn), 1, "%s", gw.log_path);
}

Test(upstream_tls, a_client_certificate_for_a_server_that_asks_one)
{
    expect("/mtls", 200, NULL);
    expect("/mtls_no_cert", 502, NULL);
}

Test(upstream_tls, an_unreadable_file_is_refused_at_start)
{
    char path[128];
    struct proc bad;
    char *log;

    conf_template_write(path, sizeof(path), "upstream_tls_missing_ca.json", vars, 3);
    cr_expect_neq(gateway_start(&bad, path, NULL), 0, "started without its ca_file");
    cr_expect_eq(proc_stop(&bad, SIGTERM, 5000), -1, "it exited on its own");
    log = proc_log(&bad);
    cr_expect(log != NULL && strstr(log, "upstreams.v.tls.ca_file: ") != NULL &&
                  strstr(log, "nowhere.pem: No such file or directory") != NULL,
              "%s", log);
    free(log);
    unlink(path);
}
