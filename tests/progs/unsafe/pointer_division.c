/* EXPECT: (pointer arithmetic|prohibited|R\d+ .*pointer) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    long p = (long)DATA(ctx);
    unsigned char *q;
    asm volatile("%0 /= 3" : "+r"(p));
    q = (unsigned char *)p;
    if (q + 1 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    return *q;
}
