#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>

#include "auth/claims.h"
#include "gateway/err.h"

#define NOW 1800000000

static const char *const auds[] = {"epro", "other"};
static const struct tg_claims_rule rule = {"https://idp", auds, 2, 60};

TestSuite(claims, .timeout = 10);

/* Checks claims built from fmt (json_pack) and returns the verdict; *why gets the reason. */
static int check(json_t *c, const char **why)
{
    int rc;

    cr_assert_not_null(c);
    rc = tg_claims_check(c, &rule, NOW, why);
    json_decref(c);
    return rc;
}

Test(claims, a_good_token_passes)
{
    const char *why = "x";

    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I}", "iss", "https://idp", "aud", "epro", "exp",
                                 (json_int_t)NOW + 10),
                       &why),
                 TG_OK));
    cr_assert(zero(ptr, (void *)why));
}

Test(claims, exp_is_required_and_the_skew_holds_on_both_sides)
{
    const char *why;

    cr_assert(eq(int, check(json_pack("{s:s, s:s}", "iss", "https://idp", "aud", "epro"), &why),
                 TG_EBADTOKEN));
    cr_assert(eq(str, (char *)why, "no exp claim"));
    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I}", "iss", "https://idp", "aud", "epro", "exp",
                                 (json_int_t)NOW - 60),
                       &why),
                 TG_OK));
    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I}", "iss", "https://idp", "aud", "epro", "exp",
                                 (json_int_t)NOW - 61),
                       &why),
                 TG_EBADTOKEN));
    cr_assert(eq(
        int,
        check(json_pack("{s:s, s:s, s:s}", "iss", "https://idp", "aud", "epro", "exp", "tomorrow"),
              &why),
        TG_EBADTOKEN));
}

Test(claims, nbf_within_the_skew)
{
    const char *why;

    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I, s:I}", "iss", "https://idp", "aud", "epro", "exp",
                                 (json_int_t)NOW + 300, "nbf", (json_int_t)NOW + 60),
                       &why),
                 TG_OK));
    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I, s:I}", "iss", "https://idp", "aud", "epro", "exp",
                                 (json_int_t)NOW + 300, "nbf", (json_int_t)NOW + 61),
                       &why),
                 TG_EBADTOKEN));
    cr_assert(eq(str, (char *)why, "token not yet valid"));
}

Test(claims, iss_is_exact_and_aud_is_any_of)
{
    const char *why;

    cr_assert(eq(int,
                 check(json_pack("{s:s, s:s, s:I}", "iss", "https://idp/", "aud", "epro", "exp",
                                 (json_int_t)NOW + 10),
                       &why),
                 TG_EBADTOKEN));
    cr_assert(eq(str, (char *)why, "wrong issuer"));
    cr_assert(eq(int,
                 check(json_pack("{s:s, s:[s, s], s:I}", "iss", "https://idp", "aud", "x", "other",
                                 "exp", (json_int_t)NOW + 10),
                       &why),
                 TG_OK));
    cr_assert(eq(int,
                 check(json_pack("{s:s, s:[s], s:I}", "iss", "https://idp", "aud", "x", "exp",
                                 (json_int_t)NOW + 10),
                       &why),
                 TG_EBADTOKEN));
    cr_assert(eq(str, (char *)why, "wrong audience"));
}

Test(claims, text_refuses_control_characters_and_inner_nuls)
{
    char buf[32];
    json_t *c = json_pack("{s:s, s:s, s:I, s:s#}", "ok", "alice", "bad", "a\r\nX-Evil: 1", "n",
                          (json_int_t)42, "nul", "ad\0min", (size_t)6);

    cr_assert(eq(str, (char *)tg_claims_text(c, "ok", buf, sizeof(buf)), "alice"));
    cr_assert(eq(str, (char *)tg_claims_text(c, "n", buf, sizeof(buf)), "42"));
    cr_assert(zero(ptr, (void *)tg_claims_text(c, "bad", buf, sizeof(buf))));
    cr_assert(zero(ptr, (void *)tg_claims_text(c, "nul", buf, sizeof(buf))));
    cr_assert(zero(ptr, (void *)tg_claims_text(c, "missing", buf, sizeof(buf))));
    json_decref(c);
}
