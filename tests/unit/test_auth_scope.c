#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>

#include "auth/scope.h"
#include "gateway/err.h"

TestSuite(scope, .timeout = 10);

static struct tg_scope parse(const char *s)
{
    struct tg_scope sc;

    cr_assert(eq(int, tg_scope_parse(s, strlen(s), &sc), TG_OK), "%s", s);
    return sc;
}

static bool grants(const char *have, const char *need)
{
    struct tg_scope h = parse(have);
    struct tg_scope n = parse(need);

    return tg_scope_grants(&h, &n);
}

Test(scope, v1_read_write_and_star_map_to_letters)
{
    cr_assert(eq(u32, parse("patient/Observation.read").perms, TG_SCOPE_R | TG_SCOPE_S));
    cr_assert(eq(u32, parse("user/Observation.write").perms, TG_SCOPE_C | TG_SCOPE_U | TG_SCOPE_D));
    cr_assert(eq(u32, parse("system/*.*").perms, 31));
    cr_assert(eq(int, parse("system/*.*").ctx, TG_SCOPE_SYSTEM));
}

Test(scope, v2_letters_in_order_with_a_query)
{
    struct tg_scope s = parse("patient/Observation.rs?category=vital-signs");

    cr_assert(eq(u32, s.perms, TG_SCOPE_R | TG_SCOPE_S));
    cr_assert(eq(sz, s.type_len, 11));
    cr_assert(eq(sz, s.query_len, strlen("category=vital-signs")));
    cr_assert(eq(u32, parse("user/Patient.cruds").perms, 31));
}

Test(scope, malformed_and_non_resource_scopes_are_refused)
{
    const char *bad[] = {"openid",
                         "launch/patient",
                         "offline_access",
                         "patient/Observation",
                         "patient/Observation.sr",
                         "patient/Observation.rr",
                         "patient/obs.rs",
                         "patient/.rs",
                         "doctor/Observation.rs",
                         "patient/Observation.x",
                         "patient/Observation.rs?",
                         "patient/Observation.",
                         ""};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tg_scope s;
        cr_expect(eq(int, tg_scope_parse(bad[i], strlen(bad[i]), &s), TG_EINVAL), "%s", bad[i]);
    }
}

Test(scope, grants_need_the_same_context_type_and_every_letter)
{
    cr_assert(grants("patient/Observation.rs", "patient/Observation.r"));
    cr_assert(grants("patient/*.read", "patient/Observation.rs"));
    cr_assert(not(grants("patient/Observation.r", "patient/Observation.rs")));
    cr_assert(not(grants("user/Observation.rs", "patient/Observation.rs")));
    cr_assert(not(grants("patient/Condition.rs", "patient/Observation.rs")));
    cr_assert(not(grants("patient/Observation.rs?category=a", "patient/Observation.rs")));
    cr_assert(grants("patient/Observation.rs?category=a", "patient/Observation.rs?category=a"));
    cr_assert(grants("patient/Observation.rs", "patient/Observation.rs?category=a"));
}

Test(scope, the_token_grant_prefers_a_non_patient_scope)
{
    json_t *claims =
        json_pack("{s:s}", "scope", "openid patient/Observation.rs user/Observation.rs");
    struct tg_scope need[] = {parse("patient/Observation.rs"), parse("user/Observation.rs")};
    struct tg_scope got;

    cr_assert(tg_scope_find_grant(claims, need, 2, &got));
    cr_assert(eq(int, got.ctx, TG_SCOPE_USER));
    json_decref(claims);
}

Test(scope, scp_arrays_are_read_and_nothing_is_no_grant)
{
    json_t *claims = json_pack("{s:[s, s]}", "scp", "openid", "patient/Observation.read");
    json_t *none = json_object();
    struct tg_scope need = parse("patient/Observation.rs");
    struct tg_scope got;

    cr_assert(tg_scope_find_grant(claims, &need, 1, &got));
    cr_assert(eq(int, got.ctx, TG_SCOPE_PATIENT));
    cr_assert(not(tg_scope_find_grant(none, &need, 1, &got)));
    json_decref(claims);
    json_decref(none);
}
