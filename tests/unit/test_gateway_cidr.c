#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/cidr.h"
#include "gateway/err.h"

TestSuite(cidr, .timeout = 10);

static bool in(const char *net, const char *ip)
{
    struct tg_cidr c;

    cr_assert(eq(int, tg_cidr_parse(net, &c), TG_OK), "%s", net);
    return tg_cidr_match(&c, 1, ip);
}

Test(cidr, prefixes_match_on_both_sides_of_the_boundary)
{
    cr_assert(in("10.0.0.0/8", "10.255.255.255"));
    cr_assert(not(in("10.0.0.0/8", "11.0.0.0")));
    cr_assert(in("192.168.1.0/25", "192.168.1.127"));
    cr_assert(not(in("192.168.1.0/25", "192.168.1.128")));
    cr_assert(in("0.0.0.0/0", "8.8.8.8"));
    cr_assert(in("127.0.0.1", "127.0.0.1"));
    cr_assert(not(in("127.0.0.1", "127.0.0.2")));
}

Test(cidr, ipv6_and_mapped_ipv4)
{
    cr_assert(in("::1", "::1"));
    cr_assert(in("fd00::/8", "fd12:3456::1"));
    cr_assert(not(in("fd00::/8", "fe80::1")));
    cr_assert(in("127.0.0.0/8", "::ffff:127.0.0.1"));
    cr_assert(not(in("::1", "127.0.0.1")));
}

Test(cidr, refuses_what_is_not_a_network)
{
    struct tg_cidr c;

    cr_assert(eq(int, tg_cidr_parse("10.0.0.1/8", &c), TG_EINVAL)); /* host bits */
    cr_assert(eq(int, tg_cidr_parse("10.0.0.0/33", &c), TG_EINVAL));
    cr_assert(eq(int, tg_cidr_parse("10.0.0.0/", &c), TG_EINVAL));
    cr_assert(eq(int, tg_cidr_parse("10.0.0.0/-1", &c), TG_EINVAL));
    cr_assert(eq(int, tg_cidr_parse("localhost", &c), TG_EINVAL));
    cr_assert(eq(int, tg_cidr_parse("", &c), TG_EINVAL));
    cr_assert(eq(int, tg_cidr_parse("::/129", &c), TG_EINVAL));
}

Test(cidr, an_unparsable_client_matches_nothing)
{
    struct tg_cidr c;

    cr_assert(eq(int, tg_cidr_parse("0.0.0.0/0", &c), TG_OK));
    cr_assert(not(tg_cidr_match(&c, 1, "")));
    cr_assert(not(tg_cidr_match(&c, 0, "1.2.3.4")));
}
