/* Unit tests for spool/codec.c: requests and answers come back as they went in, binary bodies
 * included, and truncated or foreign bytes are refused. */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/buf.h"
#include "gateway/err.h"
#include "gateway/req.h"
#include "spool/codec.h"

TestSuite(codec, .timeout = 10);

static const char body[] = "{\"a\":1}\0binary\xff";

Test(codec, a_request_comes_back_as_it_went_in)
{
    struct tg_kv in[2] = {{"Content-Type", "application/json", 12, 16}, {"Accept", "*/*", 6, 3}};
    struct tg_spool_request q = {"POST", "/q/submissions?x=1", in, 2, body, sizeof(body)};
    struct tg_spool_request back;
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    struct tg_buf b = {0};

    cr_assert(eq(int, tg_codec_request_encode(&q, &b), TG_OK));
    cr_assert(eq(int, tg_codec_request_decode((const uint8_t *)b.data, b.len, &back, hdrs), TG_OK));
    cr_expect(eq(str, (char *)back.method, "POST"));
    cr_expect(eq(str, (char *)back.path, "/q/submissions?x=1"));
    cr_assert(eq(sz, back.n_hdrs, 2));
    cr_expect(eq(str, (char *)back.hdrs[1].name, "Accept"));
    cr_expect(eq(sz, back.hdrs[0].value_len, 16));
    cr_assert(eq(sz, back.body_len, sizeof(body)));
    cr_expect(memcmp(back.body, body, sizeof(body)) == 0);
    tg_buf_cleanup(&b);
}

Test(codec, an_answer_comes_back_and_an_empty_body_stays_empty)
{
    struct tg_kv in[1] = {{"Location", "/submissions/x", 8, 14}};
    struct tg_spool_answer a = {202, in, 1, NULL, 0};
    struct tg_spool_answer back;
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    struct tg_buf b = {0};

    cr_assert(eq(int, tg_codec_answer_encode(&a, &b), TG_OK));
    cr_assert(eq(int, tg_codec_answer_decode((const uint8_t *)b.data, b.len, &back, hdrs), TG_OK));
    cr_expect(eq(int, back.status, 202));
    cr_expect(eq(sz, back.n_hdrs, 1));
    cr_expect(eq(sz, back.body_len, 0));
    tg_buf_cleanup(&b);
}

Test(codec, truncated_or_foreign_bytes_are_refused)
{
    struct tg_spool_request q = {"POST", "/p", NULL, 0, body, sizeof(body)};
    struct tg_spool_request back;
    struct tg_spool_answer ans;
    struct tg_kv hdrs[TG_CODEC_HEADERS_MAX];
    struct tg_buf b = {0};

    cr_assert(eq(int, tg_codec_request_encode(&q, &b), TG_OK));
    for (size_t n = 0; n < b.len; n++) {
        cr_expect(
            eq(int, tg_codec_request_decode((const uint8_t *)b.data, n, &back, hdrs), TG_EINVAL),
            "decoded from %zu of %zu bytes", n, b.len);
    }
    cr_expect(
        eq(int, tg_codec_answer_decode((const uint8_t *)b.data, b.len, &ans, hdrs), TG_EINVAL),
        "a request is not an answer");
    tg_buf_cleanup(&b);
}
