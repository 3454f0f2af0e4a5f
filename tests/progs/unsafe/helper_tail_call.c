/* EXPECT: helper 12 */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    bpf_tail_call(ctx, &m, 0);
    return XDP_PASS;
}
