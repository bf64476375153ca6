#include "gateway/err.h"

const char *tg_strerror(int err)
{
    switch (err) {
    case TG_OK:
        return "ok";
    case TG_ENOMEM:
        return "out of memory";
    case TG_EINVAL:
        return "bad request";
    case TG_ENOROUTE:
        return "no route";
    case TG_EUPSTREAM:
        return "upstream unavailable";
    case TG_ETIMEDOUT:
        return "upstream timeout";
    case TG_ECANCELED:
        return "client closed request";
    case TG_ETOOBIG:
        return "payload too large";
    case TG_EMETHOD:
        return "method not allowed";
    case TG_EOVERLOAD:
        return "service unavailable";
    case TG_ENOTIMPL:
        return "not implemented";
    default:
        return "internal error";
    }
}

int tg_err_http_status(int err)
{
    switch (err) {
    case TG_OK:
        return 200;
    case TG_EINVAL:
        return 400;
    case TG_ENOROUTE:
        return 404;
    case TG_EMETHOD:
        return 405;
    case TG_ETOOBIG:
        return 413;
    case TG_ECANCELED:
        return 499;
    case TG_EUPSTREAM:
        return 502;
    case TG_EOVERLOAD:
        return 503;
    case TG_ETIMEDOUT:
        return 504;
    case TG_ENOTIMPL:
        return 501;
    default:
        return 500;
    }
}
