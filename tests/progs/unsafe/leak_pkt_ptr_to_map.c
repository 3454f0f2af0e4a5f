/* EXPECT: leaks addr */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 v = (__u64)(long)DATA(ctx);
    bpf_map_update_elem(&ptrs, &k, &v, 0);
    return XDP_PASS;
}
