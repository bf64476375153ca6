#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/netaddr.h"

TestSuite(netaddr, .timeout = 10);

static bool in(const char *cidr, const char *ip)
{
    struct tg_cidr c;

    cr_assert(eq(int, tg_cidr_parse(cidr, &c), TG_OK), "%s", cidr);
    return tg_cidr_contains(&c, 1, ip, strlen(ip));
}

Test(netaddr, ranges_hold_their_addresses_only)
{
    cr_assert(in("10.0.0.0/8", "10.255.1.2"));
    cr_assert(not(in("10.0.0.0/8", "11.0.0.1")));
    cr_assert(in("192.168.1.0/25", "192.168.1.127"));
    cr_assert(not(in("192.168.1.0/25", "192.168.1.128")));
    cr_assert(in("127.0.0.1", "127.0.0.1"));
    cr_assert(not(in("127.0.0.1", "127.0.0.2")));
    cr_assert(in("fd00::/8", "fd12::1"));
    cr_assert(not(in("fd00::/8", "fe80::1")));
    cr_assert(in("0.0.0.0/0", "8.8.8.8"));
}

Test(netaddr, ipv4_mapped_addresses_count_as_ipv4)
{
    cr_assert(in("10.0.0.0/8", "::ffff:10.1.2.3"));
}

Test(netaddr, bad_ranges_and_addresses_are_refused)
{
    const char *bad[] = {"10.1.0.0/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "x", "", "::1/129"};
    struct tg_cidr c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(eq(int, tg_cidr_parse(bad[i], &c), TG_EINVAL), "%s", bad[i]);
    }
    cr_assert(not(in("0.0.0.0/0", "not-an-ip")));
    cr_assert(not(tg_ip_is_valid("1.2.3.4 ", 8)));
    cr_assert(tg_ip_is_valid("2001:db8::1", 11));
}
