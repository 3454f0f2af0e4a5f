/* filter.c -- a typical stateful filter for the benchmark: parses
 * Ethernet/IPv4/UDP, drops sources in an LPM deny list, counts flows per
 * (saddr, dport) in an LRU hash, passes everything else. */
#include "common.h"

struct lpm_key {
    __u32 prefixlen;
    __u32 addr;
};

struct flow_key {
    __u32 saddr;
    __u16 dport;
    __u16 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 256);
    __type(key, struct lpm_key);
    __type(value, __u32);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} deny SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct flow_key);
    __type(value, __u64);
} flows SEC(".maps");

SEC("xdp")
int filter(struct xdp_md *ctx)
{
    void *data = (void *) (long) ctx->data;
    void *data_end = (void *) (long) ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip;
    struct udphdr *udp;
    struct lpm_key lk;
    struct flow_key fk;
    __u64 one = 1, *cnt;

    if ((void *) (eth + 1) > data_end) {
        return XDP_DROP;
    }
    if (eth->h_proto != bpf_htons(ETH_P_IP)) {
        return XDP_PASS;
    }
    ip = (void *) (eth + 1);
    if ((void *) (ip + 1) > data_end || ip->ihl < 5) {
        return XDP_DROP;
    }
    lk.prefixlen = 32;
    lk.addr = ip->saddr;
    if (bpf_map_lookup_elem(&deny, &lk)) {
        return XDP_DROP;
    }
    if (ip->protocol != IPPROTO_UDP) {
        return XDP_PASS;
    }
    udp = (void *) ip + ip->ihl * 4;
    if ((void *) (udp + 1) > data_end) {
        return XDP_DROP;
    }
    fk.saddr = ip->saddr;
    fk.dport = udp->dest;
    fk.pad = 0;
    cnt = bpf_map_lookup_elem(&flows, &fk);
    if (cnt) {
        __sync_fetch_and_add(cnt, 1);
    } else {
        bpf_map_update_elem(&flows, &fk, &one, BPF_ANY);
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
