/* pktwrite.c -- writes into the packet: must be refused. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;
    void *data_end = (void *) (long) ctx->data_end;

    if ((void *) (data + 1) > data_end) {
        return XDP_DROP;
    }
    data[0] = 0xff;
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
