/* oob.c -- reads packet byte 40 without a bounds check: the kernel refuses
 * it; in sandbox mode short packets stop with XDP_ABORTED. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;

    return data[40] + 10;
}

char _license[] SEC("license") = "GPL";
