/* EXPECT: (context|ctx).*(offset|access) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    return ((volatile __u32 *)ctx)[40];
}
