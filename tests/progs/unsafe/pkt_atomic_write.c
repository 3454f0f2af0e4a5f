/* EXPECT: write.*packet|packet.*write */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u64 *p = DATA(ctx);
    if ((void *)(p + 1) > DATA_END(ctx))
        return XDP_PASS;
    __sync_fetch_and_add(p, 1);
    return XDP_PASS;
}
