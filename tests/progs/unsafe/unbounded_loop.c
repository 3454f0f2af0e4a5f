/* EXPECT: (infinite loop|back-edge|too large|complexity|loop) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    volatile __u32 i = 0;
    while (i != 0xffffffff || ctx->ingress_ifindex)
        i = i + 1;
    return XDP_PASS;
}
