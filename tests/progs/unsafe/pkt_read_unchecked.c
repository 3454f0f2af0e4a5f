/* EXPECT: invalid access to packet */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    unsigned char *p = DATA(ctx);
    return p[12];
}
