/* nullderef.c -- dereferences a map value without a NULL check: the
 * kernel verifier must refuse it. */
#include "common.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} m SEC(".maps");

SEC("xdp")
int f(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u32 *v = bpf_map_lookup_elem(&m, &k);

    return *v;
}

char _license[] SEC("license") = "GPL";
