/* replace.c -- a second program sharing the pinned map 'port_count' of
 * counter.c: returns the count of the ingress port. */
#include "common.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_count SEC(".maps");

SEC("xdp")
int report(struct xdp_md *ctx)
{
    __u32 port = ctx->ingress_ifindex;
    __u64 *v = bpf_map_lookup_elem(&port_count, &port);

    return v ? (int) *v : 0;
}

char _license[] SEC("license") = "GPL";
