/* EXPECT: (!read_ok|uninit|not initialized|R9) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    int r;
    asm volatile("%0 = r9" : "=r"(r));
    return r;
}
