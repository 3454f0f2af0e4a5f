/* EXPECT: invalid access to packet */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    unsigned char *p = DATA(ctx);
    if (p + 14 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    return p[14];
}
