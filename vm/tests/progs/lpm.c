/* lpm.c -- classifies IPv4 packets by source address with an LPM trie;
 * returns the value found, XDP_PASS if none, XDP_DROP if malformed. */
#include "common.h"

struct lpm_key {
    __u32 prefixlen;
    __u32 addr;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 16);
    __type(key, struct lpm_key);
    __type(value, __u32);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} src_class SEC(".maps");

SEC("xdp")
int classify(struct xdp_md *ctx)
{
    void *data = (void *) (long) ctx->data;
    void *data_end = (void *) (long) ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof *eth;
    struct lpm_key key;
    __u32 *v;

    if ((void *) (ip + 1) > data_end) {
        return XDP_DROP;
    }
    if (eth->h_proto != bpf_htons(ETH_P_IP)) {
        return XDP_PASS;
    }
    key.prefixlen = 32;
    key.addr = ip->saddr;
    v = bpf_map_lookup_elem(&src_class, &key);
    return v ? *v : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
