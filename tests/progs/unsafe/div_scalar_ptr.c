/* EXPECT: (pointer arithmetic|prohibited|leaks|R\d) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    long p = (long)DATA(ctx), r = 100;
    asm volatile("%0 /= %1" : "+r"(r) : "r"(p));
    return r;
}
