/* EXPECT: (write.*context|context.*write|ctx) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    ctx->data = ctx->data_end;
    return XDP_PASS;
}
