/* EXPECT: (jump|out of range|outside) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    asm volatile("goto +1000");
    return XDP_PASS;
}
