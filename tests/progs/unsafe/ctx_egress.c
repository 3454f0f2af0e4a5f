/* EXPECT: (egress_ifindex|invalid bpf_context access|context) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    return ctx->egress_ifindex;
}
