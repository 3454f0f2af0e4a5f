/* bounded.c -- a bounded loop (back-edge) the kernel admits: sums the
 * first 16 bytes of the packet. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;
    void *data_end = (void *) (long) ctx->data_end;
    __u32 sum = 0;
    int i;

#pragma clang loop unroll(disable)
    for (i = 0; i < 16; i++) {
        if ((void *) (data + i + 1) > data_end) {
            break;
        }
        sum += data[i];
    }
    return sum;
}

char _license[] SEC("license") = "GPL";
