#include "gateway/cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/err.h"

/* The address s (family from its form) into out; false when it is none. */
static bool parse_addr(const char *s, int *family, uint8_t out[16])
{
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

/* Whether the first bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0) {
        return false;
    }
    return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int tg_cidr_parse(const char *s, struct tg_cidr *out)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned max;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(addr)) {
        return TG_EINVAL;
    }
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (!parse_addr(addr, &out->family, out->addr)) {
        return TG_EINVAL;
    }
    max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash != NULL) {
        char *end = NULL;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits < 0 || bits > (long)max) {
            return TG_EINVAL;
        }
        out->bits = (unsigned)bits;
    }
    /* Host bits set: compare the address with itself masked to the prefix. */
    for (unsigned b = out->bits; b < max; b++) {
        if (out->addr[b / 8] & (0x80 >> (b % 8))) {
            return TG_EINVAL;
        }
    }
    return TG_OK;
}

bool tg_cidr_match(const struct tg_cidr *nets, size_t n, const char *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];
    int family;

    if (!parse_addr(ip, &family, a)) {
        return false;
    }
    if (family == AF_INET6 && memcmp(a, mapped, 12) == 0) {
        memmove(a, a + 12, 4);
        family = AF_INET;
    }
    for (size_t i = 0; i < n; i++) {
        if (nets[i].family == family && prefix_equal(a, nets[i].addr, nets[i].bits)) {
            return true;
        }
    }
    return false;
}
