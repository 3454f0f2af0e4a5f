/* mismatch.c -- declares the pinned map 'port_count' with another size:
 * must be refused while counter.c's map is pinned. */
#include "common.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 128);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_count SEC(".maps");

SEC("xdp")
int f(struct xdp_md *ctx)
{
    __u32 port = 0;

    return bpf_map_lookup_elem(&port_count, &port) ? 1 : 2;
}

char _license[] SEC("license") = "GPL";
