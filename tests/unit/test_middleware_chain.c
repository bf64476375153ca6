/* Unit tests for middleware/chain.c: each phase runs its middlewares in order, an answer or an
 * error stops the phase, the request phase ends in the route's handler, and the response and
 * done phases run every middleware listed. Fake middlewares and a fake handler write letters
 * into a trace. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/err.h"
#include "gateway/handler.h"
#include "middleware/chain.h"

static char trace[32];
static size_t n_trace;
static int b_result;
static int serve_result;

static void mark(char c)
{
    trace[n_trace++] = c;
    trace[n_trace] = '\0';
}

static int a_step(struct tg_req *req)
{
    (void)req;
    mark('A');
    return TG_MW_NEXT;
}

static int b_step(struct tg_req *req)
{
    (void)req;
    mark('B');
    return b_result;
}

static void a_resp(struct tg_req *req)
{
    (void)req;
    mark('a');
}

static void b_done(struct tg_req *req)
{
    (void)req;
    mark('b');
}

static int serve(struct tg_req *req)
{
    mark('H');
    req->resp.status = 200;
    return serve_result;
}

static const struct tg_mw_ops mw_a = {
    .name = "a", .on_headers = a_step, .on_request = a_step, .on_response = a_resp};
static const struct tg_mw_ops mw_b = {
    .name = "b", .on_headers = b_step, .on_request = b_step, .on_done = b_done};
static const struct tg_mw_ops *const both[] = {&mw_a, &mw_b};
static const struct tg_mw_ops *const resp_only[] = {&mw_a};
static const struct tg_mw_ops *const done_only[] = {&mw_b};
static const struct tg_chain chain = {{both, 2}, {both, 2}, {resp_only, 1}, {done_only, 1}};

static const struct tg_handler_ops handler = {.key = "fake", .serve = serve};
static const struct tg_policy policy = {.name = "r", .handler = &handler};
static struct tg_req req;

static void setup(void)
{
    tg_req_init(&req);
    memcpy(req.trace.id, "t-1", 4);
    req.policy = &policy;
    n_trace = 0;
    trace[0] = '\0';
    b_result = TG_MW_NEXT;
    serve_result = TG_MW_DONE;
}

static void teardown(void)
{
    tg_req_cleanup(&req);
}

TestSuite(chain, .init = setup, .fini = teardown, .timeout = 10);

Test(chain, headers_phase_runs_in_order)
{
    cr_assert(eq(int, tg_chain_headers(&chain, &req), TG_MW_NEXT));
    cr_assert(eq(str, trace, "AB"));
}

Test(chain, request_phase_ends_in_the_handler)
{
    cr_assert(eq(int, tg_chain_request(&chain, &req), TG_MW_DONE));
    cr_assert(eq(str, trace, "ABH"));
}

Test(chain, an_answer_stops_the_phase_before_the_handler)
{
    b_result = TG_MW_DONE;
    cr_assert(eq(int, tg_chain_request(&chain, &req), TG_MW_DONE));
    cr_assert(eq(str, trace, "AB"));
}

Test(chain, an_error_becomes_the_json_answer)
{
    b_result = TG_ETIMEDOUT;
    cr_assert(eq(int, tg_chain_headers(&chain, &req), TG_MW_DONE));
    cr_assert(eq(int, req.resp.status, 504));
    cr_assert(eq(int, req.end.err, TG_ETIMEDOUT));
    cr_assert(not(zero(ptr, strstr(req.resp.body, "\"trace_id\":\"t-1\""))));
    cr_assert(eq(str, (char *)tg_resp_header_get(&req.resp, "Content-Type"), "application/json"));
    cr_assert(eq(str, trace, "AB"));
}

Test(chain, a_handler_error_becomes_the_json_answer)
{
    serve_result = TG_EUPSTREAM;
    cr_assert(eq(int, tg_chain_request(&chain, &req), TG_MW_DONE));
    cr_assert(eq(int, req.resp.status, 502));
}

Test(chain, async_passes_through)
{
    serve_result = TG_MW_ASYNC;
    cr_assert(eq(int, tg_chain_request(&chain, &req), TG_MW_ASYNC));
    cr_assert(eq(str, trace, "ABH"));
}

Test(chain, response_and_done_run_what_they_list)
{
    tg_chain_response(&chain, &req);
    tg_chain_done(&chain, &req);
    cr_assert(eq(str, trace, "ab"));
}
