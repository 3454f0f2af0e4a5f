/* loop.c -- loops until a condition the verifier cannot bound: the kernel
 * must refuse it. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    __u32 x = ctx->ingress_ifindex;
    __u32 n = 0;

    while (x != 1) {
        x = (x & 1) ? 3 * x + 1 : x / 2;
        n++;
    }
    return n;
}

char _license[] SEC("license") = "GPL";
