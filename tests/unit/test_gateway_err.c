#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"

TestSuite(err, .timeout = 10);

Test(err, every_code_maps_to_its_status)
{
    cr_assert(eq(int, tg_err_http_status(TG_OK), 200));
    cr_assert(eq(int, tg_err_http_status(TG_EINVAL), 400));
    cr_assert(eq(int, tg_err_http_status(TG_ENOROUTE), 404));
    cr_assert(eq(int, tg_err_http_status(TG_EMETHOD), 405));
    cr_assert(eq(int, tg_err_http_status(TG_ETOOBIG), 413));
    cr_assert(eq(int, tg_err_http_status(TG_ECANCELED), 499));
    cr_assert(eq(int, tg_err_http_status(TG_ENOTIMPL), 501));
    cr_assert(eq(int, tg_err_http_status(TG_EUPSTREAM), 502));
    cr_assert(eq(int, tg_err_http_status(TG_EOVERLOAD), 503));
    cr_assert(eq(int, tg_err_http_status(TG_ETIMEDOUT), 504));
    cr_assert(eq(int, tg_err_http_status(TG_EUNSTABLE), 503));
    cr_assert(eq(int, tg_err_http_status(TG_ENOMEM), 500));
    cr_assert(eq(int, tg_err_http_status(TG_EINTERNAL), 500));
}

Test(err, durable_codes_map_to_their_statuses)
{
    cr_assert(eq(int, tg_err_http_status(TG_EKEY), 400));
    cr_assert(eq(int, tg_err_http_status(TG_EINPROGRESS), 409));
    cr_assert(eq(int, tg_err_http_status(TG_EKEYREUSE), 422));
    cr_assert(eq(int, tg_err_http_status(TG_ESPOOL), 503));
    cr_assert(eq(int, tg_err_http_status(TG_ENOTFOUND), 404));
}

Test(err, unknown_codes_are_500)
{
    cr_assert(eq(int, tg_err_http_status(-99), 500));
    cr_assert(eq(int, tg_err_http_status(7), 500));
}

Test(err, texts_are_stable_and_never_null)
{
    cr_assert(eq(str, (char *)tg_strerror(TG_ETIMEDOUT), "upstream timeout"));
    cr_assert(eq(str, (char *)tg_strerror(TG_ENOROUTE), "no route"));
    cr_assert(eq(str, (char *)tg_strerror(TG_EUPSTREAM), "upstream unavailable"));
    cr_assert(eq(str, (char *)tg_strerror(TG_EUNSTABLE), "upstream unstable"));
    for (int e = TG_ENOTFOUND; e <= 1; e++) { /* the last code and beyond */
        cr_assert(not(zero(ptr, (void *)tg_strerror(e))));
        cr_assert(gt(sz, strlen(tg_strerror(e)), 0));
    }
}
