#include "middleware/deadline.h"

#include "gateway/err.h"

bool tg_deadline_parse_ms(const char *v, size_t len, uint64_t *ms)
{
    uint64_t n = 0;

    if (v == NULL || len == 0 || len > 9) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (n == 0) {
        return false;
    }
    *ms = n;
    return true;
}

bool tg_deadline_parse_grpc(const char *v, size_t len, uint64_t *ms)
{
    uint64_t n = 0;
    uint64_t ns_per_unit;

    if (v == NULL || len < 2 || len > 9) {
        return false;
    }
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        ns_per_unit = 3600000000000ull;
        break;
    case 'M':
        ns_per_unit = 60000000000ull;
        break;
    case 'S':
        ns_per_unit = 1000000000ull;
        break;
    case 'm':
        ns_per_unit = 1000000ull;
        break;
    case 'u':
        ns_per_unit = 1000ull;
        break;
    case 'n':
        ns_per_unit = 1ull;
        break;
    default:
        return false;
    }
    if (n == 0) {
        return false;
    }
    /* Eight digits of hours overflow nanoseconds: saturate instead. */
    if (n > UINT64_MAX / ns_per_unit) {
        *ms = UINT64_MAX / 1000000ull;
        return true;
    }
    *ms = (n * ns_per_unit + 999999ull) / 1000000ull;
    return true;
}

static uint64_t client_budget_ms(const struct tg_req *req)
{
    uint64_t best = 0;
    uint64_t ms;
    size_t len;
    const char *v;

    if (tg_req_header_count(req, "X-Request-Timeout-Ms") == 1) {
        v = tg_req_header(req, "X-Request-Timeout-Ms", &len);
        if (tg_deadline_parse_ms(v, len, &ms)) {
            best = ms;
        }
    }
    if (tg_req_header_count(req, "grpc-timeout") == 1) {
        v = tg_req_header(req, "grpc-timeout", &len);
        if (tg_deadline_parse_grpc(v, len, &ms) && (best == 0 || ms < best)) {
            best = ms;
        }
    }
    return best;
}

static int deadline_on_request(struct tg_req *req)
{
    const struct tg_policy *p = req->policy;
    uint64_t budget = p->timeout_ms; /* at least 1: routes/table.c */
    uint64_t client;

    if (p->accept_client_timeout) {
        client = client_budget_ms(req);
        if (client > 0 && client < budget) {
            budget = client;
        }
    }
    req->deadline_us = req->start_us + budget * 1000u;
    if (tg_now_us() >= req->deadline_us) {
        /* The client took the budget sending its request: no upstream was slow, so this is
         * not a 504 (it would page whoever runs the backend). */
        tg_req_fail(req, TG_ECLIENTTIMEOUT, "request not received within the route's budget");
        req->resp.close = true;
        return TG_MW_DONE;
    }
    return TG_MW_NEXT;
}

const struct tg_mw_ops tg_mw_deadline = {
    .name = "deadline",
    .on_request = deadline_on_request,
};
