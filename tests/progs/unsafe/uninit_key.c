/* EXPECT: (invalid (indirect )?read from stack|uninit) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k[2];
    k[1] = 0;
    return bpf_map_lookup_elem(&m, &k[0]) ? XDP_DROP : XDP_PASS;
}
