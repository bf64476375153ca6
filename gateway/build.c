#include "gateway/build.h"

#include <jansson.h>

#include "gateway/digest.h"
#include "gateway/server.h"
#include "gateway/upstream.h"

#ifndef TG_COMMIT
#define TG_COMMIT "unknown"
#endif

void tg_build_get(struct tg_build *b)
{
    b->version = TG_VERSION;
    b->commit = TG_COMMIT;
    b->libmicrohttpd = tg_server_lib_version();
    b->libcurl = tg_up_lib_version();
    b->jansson = jansson_version_str();
    b->openssl = tg_digest_lib_version();
}
