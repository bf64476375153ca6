#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "routes/handler.h"

TestSuite(hop_by_hop, .timeout = 10);

static bool hop(const char *name, const char *connection)
{
    return tg_header_is_hop_by_hop(name, strlen(name), connection,
                                   connection == NULL ? 0 : strlen(connection));
}

Test(hop_by_hop, fixed_names_in_any_case)
{
    const char *names[] = {
        "Connection",          "keep-alive",      "TE", "Trailer", "TRANSFER-ENCODING", "Upgrade",
        "Proxy-Authorization", "proxy-connection"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_assert(hop(names[i], NULL), "%s", names[i]);
    }
}

Test(hop_by_hop, end_to_end_names_pass)
{
    const char *names[] = {"Content-Type", "Authorization", "X-Trace-Id",  "Trailers",
                           "TEX",          "Proxy",         "Connections", "Accept"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_assert(not(hop(names[i], NULL)), "%s", names[i]);
    }
}

Test(hop_by_hop, names_listed_in_connection)
{
    cr_assert(hop("X-Secret", "keep-alive, X-Secret"));
    cr_assert(hop("x-secret", " x-other ,X-SECRET "));
    cr_assert(not(hop("X-Secret", "keep-alive, X-Secrets")));
    cr_assert(not(hop("X-Secret", "X-Secre")));
    cr_assert(not(hop("X-Secret", "")));
    cr_assert(not(hop("X-Secret", ",,")));
}
