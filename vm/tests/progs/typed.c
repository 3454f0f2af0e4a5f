/* typed.c -- maps whose keys and values have a BTF type of every kind the
 * codec shows (test-btf.c): addresses, network byte order, enums, strings,
 * hex bytes, floats, bitfields, arrays, unions and nested structs. */
#include "common.h"

typedef __be16 okopy_be16;
typedef __be32 okopy_ipv4_t;
typedef struct { __u8 b[16]; } okopy_ipv6_t;
typedef struct { __u8 b[6]; } okopy_mac_t;

enum flow_action {
    FLOW_DROP = 1,
    FLOW_PASS = 2,
    FLOW_MARK = -7,
};

struct flow_key {
    okopy_ipv4_t saddr;
    okopy_ipv6_t daddr;
    okopy_be16 sport;
    __u8 proto;
    __u8 pad;
};

struct flow_info {
    __u64 packets;
    __s32 delta;
    enum flow_action action;
    char label[8];
    okopy_mac_t mac;
    __u8 cookie[4];
    _Bool seen;
    __u8 flags : 3;
    __u8 level : 5;
    __u16 ports[3];
    float ratio;
    double mean;
    union {
        __u32 word;
        __u8 bytes[4];
    } u;
    struct {
        __s8 hops[2];
    } path[2];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, struct flow_key);
    __type(value, struct flow_info);
} flows SEC(".maps");

SEC("xdp")
int typed(struct xdp_md *ctx)
{
    struct flow_key key = {};
    struct flow_info *info;

    key.proto = ctx->ingress_ifindex;
    info = bpf_map_lookup_elem(&flows, &key);
    if (info) {
        __sync_fetch_and_add(&info->packets, 1);
        return info->seen ? XDP_DROP : XDP_PASS;
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
