/* prefix_blocklist.c -- IPv4 source prefix blocklist on an LPM trie.
 *
 * Drops packets whose source address falls in any listed prefix (longest
 * match wins; the value says whether the prefix is blocked, so an allowed
 * more-specific prefix can punch a hole in a blocked one).  Lookup cost
 * does not grow with the number of prefixes, which the rule-scaling
 * benchmark compares with iptables and nftables.
 *
 * Maps:
 *   prefixes  LPM trie struct v4_prefix -> struct prefix_rule
 * Verdicts: XDP_DROP for a blocked source, XDP_PASS otherwise. */

#include <okopy/parse.h>
#include <okopy/types.h>

#ifndef PREFIX_MAX_ENTRIES
#define PREFIX_MAX_ENTRIES 262144
#endif

struct v4_prefix {
    __u32 prefixlen;
    okopy_ipv4_t addr;
};

struct prefix_rule {
    __u32 block;        /* 1: drop, 0: allow (an exception). */
    __u32 pad;
    __u64 hits;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, PREFIX_MAX_ENTRIES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct v4_prefix);
    __type(value, struct prefix_rule);
} prefixes SEC(".maps");

SEC("xdp")
int prefix_blocklist(struct xdp_md *ctx)
{
    struct v4_prefix key = { .prefixlen = 32 };
    struct prefix_rule *rule;
    struct cursor c;
    struct iphdr *iph;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (parse_ipv4(&c, &iph) < 0)
        return XDP_PASS;
    key.addr = iph->saddr;
    rule = bpf_map_lookup_elem(&prefixes, &key);
    if (!rule)
        return XDP_PASS;
    __sync_fetch_and_add(&rule->hits, 1);
    return rule->block ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
