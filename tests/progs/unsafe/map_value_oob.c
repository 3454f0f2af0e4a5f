/* EXPECT: (invalid access to map value|map_value|off=8) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0, *v = bpf_map_lookup_elem(&m, &k);
    if (!v)
        return XDP_PASS;
    return *(volatile __u32 *)((char *)v + 8);
}
