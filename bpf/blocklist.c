/* blocklist.c -- stateless destination blocklist (Oko's first example).
 *
 * Drops IPv4 and IPv6 packets whose destination address is in a hash map,
 * counting drops per entry; everything else passes.  The controller adds
 * and removes addresses at run time: a change takes effect for the next
 * packet, with no reload.
 *
 * Maps:
 *   blocked_v4   okopy_ipv4_t -> struct block_stats   (hash, pinned)
 *   blocked_v6   okopy_ipv6_t -> struct block_stats   (hash, pinned)
 * Verdicts: XDP_DROP for a blocked destination, XDP_PASS otherwise
 *   (including non-IP and truncated packets, left to OpenFlow). */

#include <okopy/parse.h>
#include <okopy/types.h>

/* Entries per address family. */
#ifndef BLOCKLIST_MAX_ENTRIES
#define BLOCKLIST_MAX_ENTRIES 65536
#endif

struct block_stats {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BLOCKLIST_MAX_ENTRIES);
    __type(key, okopy_ipv4_t);
    __type(value, struct block_stats);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} blocked_v4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BLOCKLIST_MAX_ENTRIES);
    __type(key, okopy_ipv6_t);
    __type(value, struct block_stats);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} blocked_v6 SEC(".maps");

static __always_inline int
count_drop(struct block_stats *st, struct xdp_md *ctx)
{
    __sync_fetch_and_add(&st->packets, 1);
    __sync_fetch_and_add(&st->bytes, ctx->data_end - ctx->data);
    return XDP_DROP;
}

SEC("xdp")
int blocklist(struct xdp_md *ctx)
{
    struct cursor c;
    struct block_stats *st;
    int proto;

    cursor_init(&c, ctx);
    proto = parse_eth(&c, NULL);
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *iph;
        okopy_ipv4_t daddr;

        if (parse_ipv4(&c, &iph) < 0)
            return XDP_PASS;
        daddr = iph->daddr;
        st = bpf_map_lookup_elem(&blocked_v4, &daddr);
        if (st)
            return count_drop(st, ctx);
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6h;
        okopy_ipv6_t daddr;

        if (parse_ipv6(&c, &ip6h) < 0)
            return XDP_PASS;
        __builtin_memcpy(&daddr, &ip6h->daddr, sizeof daddr);
        st = bpf_map_lookup_elem(&blocked_v6, &daddr);
        if (st)
            return count_drop(st, ctx);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
