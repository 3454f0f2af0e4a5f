/* tunable.c -- 'const volatile' tunables in .rodata, set before load. */
#include "common.h"

const volatile __u32 verdict = XDP_PASS;
const volatile __u32 peek = 0;      /* Nonzero: an unchecked packet read. */
__u32 hits;

SEC("xdp")
int tun(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;

    hits++;
    if (peek) {
        /* Only safe because the kernel verifier sees 'peek' == 0 in the
         * frozen .rodata and removes this branch. */
        return data[100];
    }
    return verdict;
}

char _license[] SEC("license") = "GPL";
