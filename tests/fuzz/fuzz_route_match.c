/* libFuzzer: the route matcher on request paths and methods a client chooses, against a table
 * with exact, parameter, prefix and method-specific routes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/conf.h"
#include "gateway/uri.h"
#include "routes/table.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_conf *conf;

static const char table[] =
    "{\"upstreams\": {\"a\": {\"url\": \"http://127.0.0.1:1\"}}, \"routes\": ["
    "{\"method\": \"GET\", \"path\": \"/\", \"upstream\": \"a\"},"
    "{\"method\": \"GET\", \"path\": \"/patients/{id}\", \"upstream\": \"a\"},"
    "{\"method\": \"POST\", \"path\": \"/patients/{id}/forms/{form}\", \"upstream\": \"a\"},"
    "{\"method\": \"GET\", \"path\": \"/patients/{id}/report\", \"upstream\": \"a\"},"
    "{\"method\": \"*\", \"path\": \"/api/*\", \"upstream\": \"a\", \"strip_prefix\": true},"
    "{\"method\": \"DELETE\", \"path\": \"/api/v1/x\", \"upstream\": \"a\"},"
    "{\"method\": \"GET\", \"path\": \"/*\", \"upstream\": \"a\"}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/tg-fuzz-routes-XXXXXX";
    char err[TG_CONF_ERR_MAX];
    int fd = mkstemp(path);

    (void)argc;
    (void)argv;
    if (fd == -1 || write(fd, table, sizeof(table) - 1) != (ssize_t)(sizeof(table) - 1)) {
        abort();
    }
    close(fd);
    if (tg_conf_load(path, tg_route_table_load, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH"};
    const char *path = (const char *)data + 1;
    struct tg_route_match m;
    char allow[128];
    char out[512];

    if (size == 0) {
        return 0;
    }
    size--;
    if (tg_route_table_match(conf->routes, methods[data[0] % 6], path, size, &m) == 0) {
        for (size_t i = 0; i < m.n_params; i++) {
            if (m.params[i].value < path || m.params[i].value + m.params[i].len > path + size) {
                __builtin_trap();
            }
        }
        tg_route_expand("/x/{id}/{form}", &m, out, sizeof(out));
    }
    tg_route_table_allow(conf->routes, path, size, allow, sizeof(allow));
    tg_path_has_dot_segment(path, size);
    return 0;
}
