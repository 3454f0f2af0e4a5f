/* EXPECT: leaks addr */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&ptrs, &k);
    if (!v)
        return XDP_PASS;
    *v = (__u64)(long)&k;
    return XDP_PASS;
}
