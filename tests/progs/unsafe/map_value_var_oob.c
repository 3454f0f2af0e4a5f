/* EXPECT: (invalid access to map value|unbounded|min value is negative|map_value) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0, *v = bpf_map_lookup_elem(&m, &k);
    unsigned char *p = DATA(ctx);
    if (!v || p + 1 > (unsigned char *)DATA_END(ctx))
        return XDP_PASS;
    return v[p[0]];
}
