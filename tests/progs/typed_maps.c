/* A program whose maps use every kind of type okopy/bpf/btf.py converts. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <okopy/types.h>

enum state { CLOSED = 0, SYN_SENT = 1, ESTABLISHED = 2 };

struct flow_key {
    okopy_ipv4_t saddr;
    okopy_ipv4_t daddr;
    okopy_be16 sport;
    __u16 dport_host;
    __u8 proto;
    __u8 pad[3];
};

struct flow_val {
    __u64 packets;
    __s32 delta;
    enum state state;
    char label[8];
    __u8 raw[4];
    okopy_mac_t mac;
    __u16 flag : 1, level : 3;
    __u32 hist[3];
};

struct lpm_v6_key {
    __u32 prefixlen;
    okopy_ipv6_t addr;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, struct flow_key);
    __type(value, struct flow_val);
} flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 16);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_v6_key);
    __type(value, __u32);
} prefixes SEC(".maps");

SEC("xdp")
int typed(struct xdp_md *ctx)
{
    struct flow_key k = {};
    struct flow_val *v = bpf_map_lookup_elem(&flows, &k);
    struct lpm_v6_key lk = { .prefixlen = 128 };

    if (v)
        v->packets++;
    if (bpf_map_lookup_elem(&prefixes, &lk))
        return XDP_DROP;
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
