#ifndef TG_GATEWAY_CIDR_H
#define TG_GATEWAY_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Client networks ("10.0.0.0/8", "::1", "192.168.1.7"): who may reach a route. */
struct tg_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits; /* prefix length; a bare address is /32 or /128 */
};

/* Parses s: a numeric address with an optional /prefix. Host bits must be zero
 * ("10.0.0.1/8" is refused: it is a typo more often than not). TG_OK or TG_EINVAL. */
int tg_cidr_parse(const char *s, struct tg_cidr *out);

/* Whether the address ip (text, as in req->client_ip) is in one of the n networks. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is compared as IPv4. Any thread. */
bool tg_cidr_match(const struct tg_cidr *nets, size_t n, const char *ip);

#endif
