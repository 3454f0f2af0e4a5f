/* EXPECT: (stack|invalid.*access|unbounded|variable) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    volatile __u8 buf[16] = {};
    unsigned char *p = DATA(ctx);
    if (p + 1 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    return buf[p[0]];
}
