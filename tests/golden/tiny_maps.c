/* The program whose map replies tests/golden/replies/ captures: its maps
 * have the names and key sizes the request goldens use (capture.py), so
 * the switch answers those requests rather than refusing them. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <okopy/types.h>

struct tiny_config {
    __u32 rate;
    __u32 burst;
};

struct tiny_source {
    __u64 packets;
    __u64 bytes;
};

/* One entry: what update-bpf-map writes in the update golden. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tiny_config);
} config SEC(".maps");

/* Sources by IPv4 address: what the lookup, dump and delete goldens read. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, okopy_ipv4_t);
    __type(value, struct tiny_source);
} sources SEC(".maps");

SEC("xdp") int tiny_maps(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct tiny_config *cfg = bpf_map_lookup_elem(&config, &zero);

    return cfg && cfg->rate ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
