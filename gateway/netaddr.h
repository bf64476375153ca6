#ifndef TG_GATEWAY_NETADDR_H
#define TG_GATEWAY_NETADDR_H

/* IP address ranges (CIDR) and whether an address in text falls in one: the conf's trusted
 * proxies. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tg_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* bits that must match */
};

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (all its bits). Bits past the prefix
 * must be zero. TG_OK or TG_EINVAL. */
int tg_cidr_parse(const char *s, struct tg_cidr *out);

/* Whether the address ip (len bytes of text, IPv4 or IPv6) is in one of set[0..n). An
 * IPv4-mapped IPv6 address counts as the IPv4 one. False for text that is no address. */
bool tg_cidr_contains(const struct tg_cidr *set, size_t n, const char *ip, size_t len);

/* Whether s (len bytes) is an IPv4 or IPv6 address. */
bool tg_ip_is_valid(const char *s, size_t len);

#endif
