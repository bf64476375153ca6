#include "gateway/err.h"
#include "routes/handler.h"

static int fanout_serve(struct tg_req *req)
{
    req->err_detail = "fan-out not available yet";
    return TG_ENOTIMPL;
}

const struct tg_handler_ops tg_handler_fanout = {
    .kind = "fanout",
    .serve = fanout_serve,
};
