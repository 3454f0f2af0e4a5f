/* EXPECT: invalid access to packet */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    struct ethhdr *eth = DATA(ctx);
    if ((void *)(eth + 1) > DATA_END(ctx))
        return XDP_PASS;
    return *(__u32 *)((char *)eth + 20);
}
