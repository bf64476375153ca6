#include "gateway/err.h"

#include <stddef.h>

/* One row per failure kind, in the order of enum tg_err: the client's text and the HTTP status. */
struct err_row {
    int err;
    int status;
    const char *text;
};

static const struct err_row rows[] = {
    {TG_OK, 200, "ok"},
    {TG_ENOMEM, 500, "out of memory"},
    {TG_EINVAL, 400, "bad request"},
    {TG_ENOROUTE, 404, "no route"},
    {TG_EUPSTREAM, 502, "upstream unavailable"},
    {TG_ETIMEDOUT, 504, "upstream timeout"},
    {TG_ECANCELED, 499, "client closed request"},
    {TG_ETOOBIG, 413, "payload too large"},
    {TG_EMETHOD, 405, "method not allowed"},
    {TG_EOVERLOAD, 503, "service unavailable"},
    {TG_ENOTIMPL, 501, "not implemented"},
    {TG_EINTERNAL, 500, "internal error"},
    {TG_ECLIENTTIMEOUT, 408, "request timeout"},
    {TG_EHEADERS, 431, "request header fields too large"},
    {TG_ERESPTOOBIG, 502, "upstream response too large"},
    {TG_EDRAIN, 503, "shutting down"},
    {TG_EKEY, 400, "bad idempotency key"},
    {TG_EINPROGRESS, 409, "request in progress"},
    {TG_EKEYREUSE, 422, "idempotency key reused"},
    {TG_ESPOOL, 503, "cannot store submission"},
    {TG_ENOTFOUND, 404, "not found"},
};

/* rows[] is ordered by -err: the row of err is rows[-err]. Unknown codes are bugs: 500. */
static const struct err_row *row_of(int err)
{
    size_t i = err > 0 ? 0 : (size_t) - (long)err;

    if (err > 0 || i >= sizeof(rows) / sizeof(rows[0])) {
        i = (size_t)-TG_EINTERNAL;
    }
    return &rows[i];
}

const char *tg_strerror(int err)
{
    return row_of(err)->text;
}

int tg_err_http_status(int err)
{
    return row_of(err)->status;
}

const char *tg_err_cancel_reason(int err)
{
    switch (err) {
    case TG_ECANCELED:
        return "client left";
    case TG_ETIMEDOUT:
        return "deadline exceeded";
    case TG_EDRAIN:
        return "gateway shutting down";
    default:
        return tg_strerror(err);
    }
}
