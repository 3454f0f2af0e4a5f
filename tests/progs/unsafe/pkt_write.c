/* EXPECT: write.*packet|packet.*write */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    unsigned char *p = DATA(ctx);
    if (p + 1 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    p[0] = 0xff;
    return XDP_PASS;
}
