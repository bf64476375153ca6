/* CIDR ranges with inet_pton. */
#include "gateway/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/err.h"

/* Parses len bytes of text as an address into out (16 bytes); returns the family or 0. */
static int parse_ip(const char *s, size_t len, uint8_t *out)
{
    char buf[INET6_ADDRSTRLEN + 1];

    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        return AF_INET;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        /* ::ffff:a.b.c.d is a.b.c.d */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(out, mapped, 12) == 0) {
            memmove(out, out + 12, 4);
            memset(out + 4, 0, 12);
            return AF_INET;
        }
        return AF_INET6;
    }
    return 0;
}

int tg_cidr_parse(const char *s, struct tg_cidr *out)
{
    const char *slash = strchr(s, '/');
    size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned max;
    char *end = NULL;
    long bits;

    memset(out, 0, sizeof(*out));
    out->family = parse_ip(s, len, out->addr);
    if (out->family == 0) {
        return TG_EINVAL;
    }
    max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash != NULL) {
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || bits < 0 || bits > (long)max) {
            return TG_EINVAL;
        }
        out->prefix = (unsigned)bits;
    }
    for (unsigned b = out->prefix; b < max; b++) {
        if (out->addr[b / 8] & (0x80u >> (b % 8))) {
            return TG_EINVAL; /* "10.1.0.0/8": a typo, not a range */
        }
    }
    return TG_OK;
}

static bool in_range(const struct tg_cidr *c, int family, const uint8_t *a)
{
    unsigned full = c->prefix / 8;
    unsigned rest = c->prefix % 8;

    if (c->family != family || memcmp(c->addr, a, full) != 0) {
        return false;
    }
    return rest == 0 || ((c->addr[full] ^ a[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool tg_cidr_contains(const struct tg_cidr *set, size_t n, const char *ip, size_t len)
{
    uint8_t a[16];
    int family = parse_ip(ip, len, a);

    for (size_t i = 0; family != 0 && i < n; i++) {
        if (in_range(&set[i], family, a)) {
            return true;
        }
    }
    return false;
}

bool tg_ip_is_valid(const char *s, size_t len)
{
    uint8_t a[16];

    return parse_ip(s, len, a) != 0;
}
