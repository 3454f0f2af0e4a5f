/* EXPECT: (leaks addr|R0 .*pointer|return value|R0) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    long r = (long)ctx;
    asm volatile("" : "+r"(r));
    return r;
}
