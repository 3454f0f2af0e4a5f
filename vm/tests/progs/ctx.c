/* ctx.c -- reads every xdp_md field: returns
 * len * 1000 + ingress_ifindex + rx_queue_index and checks
 * data_meta == data. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    long data = ctx->data, end = ctx->data_end, meta = ctx->data_meta;

    if (meta != data) {
        return 0;
    }
    /* egress_ifindex: the kernel allows it only for devmap programs. */
    return (end - data) * 1000 + ctx->ingress_ifindex + ctx->rx_queue_index;
}

SEC("xdp")
int second(struct xdp_md *ctx)
{
    return 77;
}

char _license[] SEC("license") = "GPL";
