/* EXPECT: (too large|complexity|processed) */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    __u32 k = 0, sum = 0;
    for (__u32 i = 0; i < (1 << 22); i++) {
        __u32 *v = bpf_map_lookup_elem(&m, &k);
        if (v)
            sum += *v;
        k = i & 15;
    }
    return sum & 3;
}
