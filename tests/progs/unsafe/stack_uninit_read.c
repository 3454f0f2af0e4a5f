/* EXPECT: (invalid read from stack|uninit|!read_ok) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    volatile __u32 x[4];
    return x[ctx->ingress_ifindex & 3];
}
