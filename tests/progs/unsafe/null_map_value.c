/* EXPECT: map_value_or_null */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0, *v = bpf_map_lookup_elem(&m, &k);
    return *v;
}
