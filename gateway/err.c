#include "gateway/err.h"

#include <stddef.h>

/* One row per failure kind, in the order of enum tg_err: the client's text and the HTTP status. */
struct err_row {
    int err;
    int status;
    const char *text;
    bool closes; /* the message cannot be trusted: close the connection after the answer */
};

static const struct err_row rows[] = {
    {TG_OK, 200, "ok", false},
    {TG_ENOMEM, 500, "out of memory", false},
    {TG_EINVAL, 400, "bad request", true},
    {TG_ENOROUTE, 404, "no route", false},
    {TG_EUPSTREAM, 502, "upstream unavailable", false},
    {TG_ETIMEDOUT, 504, "upstream timeout", false},
    {TG_ECANCELED, 499, "client closed request", false},
    {TG_ETOOBIG, 413, "payload too large", true},
    {TG_EMETHOD, 405, "method not allowed", false},
    {TG_EOVERLOAD, 503, "service unavailable", false},
    {TG_ENOTIMPL, 501, "not implemented", true},
    {TG_EINTERNAL, 500, "internal error", false},
    {TG_ECLIENTTIMEOUT, 408, "request timeout", false},
    {TG_EHEADERS, 431, "request header fields too large", true},
    {TG_ERESPTOOBIG, 502, "upstream response too large", false},
    {TG_EDRAIN, 503, "shutting down", false},
    {TG_ENOTOKEN, 401, "invalid token", false},
    {TG_EBADTOKEN, 401, "invalid token", false},
    {TG_EFORBIDDEN, 403, "insufficient scope", false},
    {TG_ERATELIMIT, 429, "too many requests", false},
    {TG_EPLAINTLS, 400, "plain HTTP request sent to the HTTPS port", true},
    {TG_ENOTALLOWED, 403, "forbidden", false},
    {TG_EUNSTABLE, 503, "upstream unstable", false},
    {TG_EKEY, 400, "bad idempotency key", false},
    {TG_EINPROGRESS, 409, "request in progress", false},
    {TG_EKEYREUSE, 422, "idempotency key reused", false},
    {TG_ESPOOL, 503, "cannot store submission", false},
    {TG_ENOTFOUND, 404, "not found", false},
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

bool tg_err_closes(int err)
{
    return err < 0 && row_of(err)->closes;
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
