#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "middleware/chain.h"

/* Each fake middleware writes its letter into the trace: upper case on request, lower case on
 * response. */
static char trace[32];
static size_t n_trace;
static int b_result;

static void mark(char c)
{
    trace[n_trace++] = c;
    trace[n_trace] = '\0';
}

static int a_req(struct tg_req *req)
{
    (void)req;
    mark('A');
    return TG_MW_NEXT;
}

static void a_resp(struct tg_req *req)
{
    (void)req;
    mark('a');
}

static int b_req(struct tg_req *req)
{
    (void)req;
    mark('B');
    return b_result;
}

static void b_resp(struct tg_req *req)
{
    (void)req;
    mark('b');
}

static int c_req(struct tg_req *req)
{
    mark('C');
    req->resp.status = 200;
    return TG_MW_DONE;
}

static void c_resp(struct tg_req *req)
{
    (void)req;
    mark('c');
}

static const struct tg_mw_ops mw_a = {"a", NULL, a_req, a_resp};
static const struct tg_mw_ops mw_b = {"b", NULL, b_req, b_resp};
static const struct tg_mw_ops mw_c = {"c", NULL, c_req, c_resp};
static const struct tg_mw_ops *const order[] = {&mw_a, &mw_b, &mw_c};
static const struct tg_chain chain = {order, 3};

static struct tg_req req;

static void setup(void)
{
    memset(&req, 0, sizeof(req));
    memcpy(req.trace_id, "t-1", 4);
    n_trace = 0;
    trace[0] = '\0';
    b_result = TG_MW_NEXT;
}

static void teardown(void)
{
    tg_resp_cleanup(&req.resp);
}

TestSuite(chain, .init = setup, .fini = teardown, .timeout = 10);

Test(chain, runs_in_order_and_responds_in_reverse)
{
    cr_assert(eq(int, tg_chain_run(&chain, &req), TG_MW_DONE));
    tg_chain_response(&chain, &req);
    cr_assert(eq(str, trace, "ABCcba"));
}

Test(chain, a_done_middleware_stops_the_rest)
{
    b_result = TG_MW_DONE;
    cr_assert(eq(int, tg_chain_run(&chain, &req), TG_MW_DONE));
    tg_chain_response(&chain, &req);
    cr_assert(eq(str, trace, "ABba"));
}

Test(chain, an_error_becomes_the_json_answer_and_earlier_ones_still_respond)
{
    b_result = TG_ETIMEDOUT;
    cr_assert(eq(int, tg_chain_run(&chain, &req), TG_MW_DONE));
    cr_assert(eq(int, req.resp.status, 504));
    cr_assert(not(zero(ptr, strstr(req.resp.body, "\"trace_id\":\"t-1\""))));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Content-Type"), "application/json"));
    tg_chain_response(&chain, &req);
    cr_assert(eq(str, trace, "ABba"));
}

Test(chain, async_pauses_and_response_runs_once)
{
    b_result = TG_MW_ASYNC;
    cr_assert(eq(int, tg_chain_run(&chain, &req), TG_MW_ASYNC));
    cr_assert(eq(str, trace, "AB"));
    /* ... the upstream answers; the server then runs the responses, once. */
    tg_chain_response(&chain, &req);
    tg_chain_response(&chain, &req);
    cr_assert(eq(str, trace, "ABba"));
}

Test(chain, headers_pass_counts_every_middleware_as_run)
{
    cr_assert(eq(int, tg_chain_headers(&chain, &req), TG_MW_NEXT));
    tg_chain_response(&chain, &req);
    cr_assert(eq(str, trace, "cba"));
}
