/* EXPECT: (r10|R10|frame pointer|read[- ]only) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    asm volatile("r10 = 0");
    return XDP_PASS;
}
