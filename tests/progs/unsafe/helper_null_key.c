/* EXPECT: (R2 type=scalar expected|invalid|expected=fp|scalar) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 v = 1;
    bpf_map_update_elem(&m, (void *)0, &v, 0);
    return XDP_PASS;
}
