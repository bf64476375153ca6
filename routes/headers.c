#include "routes/handler.h"

#include <string.h>
#include <strings.h>

static bool name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* Whether name appears as a token of the comma-separated list. */
static bool in_list(const char *name, size_t len, const char *list, size_t list_len)
{
    size_t i = 0;

    while (i < list_len) {
        size_t start;
        size_t end;
        while (i < list_len && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) {
            i++;
        }
        start = i;
        while (i < list_len && list[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t')) {
            end--;
        }
        if (end - start == len && len > 0 && strncasecmp(list + start, name, len) == 0) {
            return true;
        }
    }
    return false;
}

bool tg_header_is_hop_by_hop(const char *name, size_t len, const char *connection,
                             size_t connection_len)
{
    if (name_is(name, len, "Connection") || name_is(name, len, "Keep-Alive") ||
        name_is(name, len, "TE") || name_is(name, len, "Trailer") ||
        name_is(name, len, "Transfer-Encoding") || name_is(name, len, "Upgrade") ||
        (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)) {
        return true;
    }
    return connection != NULL && in_list(name, len, connection, connection_len);
}
