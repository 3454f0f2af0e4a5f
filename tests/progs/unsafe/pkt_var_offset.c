/* EXPECT: (invalid access to packet|unbounded|math between pkt pointer) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    unsigned char *p = DATA(ctx);
    if (p + 1 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    return p[p[0] * 64];
}
