/* EXPECT: (stack|off=|invalid.*access) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    int r;
    asm volatile("%0 = *(u64 *)(r10 - 520)" : "=r"(r));
    return r;
}
