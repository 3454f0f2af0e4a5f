/* EXPECT: (R1 type=ctx expected|expected=map_ptr|map_ptr) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0;
    return bpf_map_lookup_elem((void *)ctx, &k) ? XDP_DROP : XDP_PASS;
}
