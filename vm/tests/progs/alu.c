/* alu.c -- a compute-bound program for the per-instruction benchmark: a
 * fixed number of hash rounds over registers (no memory access). */
#include "common.h"

SEC("xdp")
int spin(struct xdp_md *ctx)
{
    __u64 h = ctx->ingress_ifindex;
    int i;

#pragma clang loop unroll(full)
    for (i = 0; i < 64; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h += i;
    }
    return (__u32) h & 3;
}

char _license[] SEC("license") = "GPL";
