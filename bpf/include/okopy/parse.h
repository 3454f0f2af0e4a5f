/* okopy/parse.h -- bounds-checked header parsing for XDP filters.
 *
 * Every accessor checks the header against data_end right before handing
 * it out and returns NULL (or -1) when the packet is too short, so callers
 * only ever dereference checked pointers.  The cursor advances past each
 * header parsed.  Nothing here writes to the packet. */

#ifndef OKOPY_PARSE_H
#define OKOPY_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Maximum VLAN tags skipped before the network header. */
#ifndef OKOPY_MAX_VLAN_DEPTH
#define OKOPY_MAX_VLAN_DEPTH 2
#endif

struct cursor {
    void *pos;
    void *end;
};

struct vlan_tag {
    __be16 tci;
    __be16 proto;
};

static __always_inline void
cursor_init(struct cursor *c, struct xdp_md *ctx)
{
    c->pos = (void *)(long)ctx->data;
    c->end = (void *)(long)ctx->data_end;
}

/* Parses Ethernet and up to OKOPY_MAX_VLAN_DEPTH VLAN tags.  Returns the
 * network-order EtherType of the payload, or -1 if truncated. */
static __always_inline int
parse_eth(struct cursor *c, struct ethhdr **ethp)
{
    struct ethhdr *eth = c->pos;
    __be16 proto;

    if ((void *)(eth + 1) > c->end)
        return -1;
    c->pos = eth + 1;
    proto = eth->h_proto;
#pragma unroll
    for (int i = 0; i < OKOPY_MAX_VLAN_DEPTH; i++) {
        struct vlan_tag *tag = c->pos;

        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
            break;
        if ((void *)(tag + 1) > c->end)
            return -1;
        proto = tag->proto;
        c->pos = tag + 1;
    }
    if (ethp)
        *ethp = eth;
    return proto;
}

/* Parses an IPv4 header (with options).  Returns the protocol number, or
 * -1 if truncated or malformed. */
static __always_inline int
parse_ipv4(struct cursor *c, struct iphdr **iphp)
{
    struct iphdr *iph = c->pos;
    int len;

    if ((void *)(iph + 1) > c->end)
        return -1;
    len = iph->ihl * 4;
    if (len < (int)sizeof *iph)
        return -1;
    if (c->pos + len > c->end)
        return -1;
    c->pos += len;
    *iphp = iph;
    return iph->protocol;
}

/* Parses a fixed IPv6 header (extension headers are not followed).
 * Returns the next-header number, or -1 if truncated. */
static __always_inline int
parse_ipv6(struct cursor *c, struct ipv6hdr **ip6hp)
{
    struct ipv6hdr *ip6h = c->pos;

    if ((void *)(ip6h + 1) > c->end)
        return -1;
    c->pos = ip6h + 1;
    *ip6hp = ip6h;
    return ip6h->nexthdr;
}

/* True for IPv4 fragments other than the first: they carry no L4 header. */
static __always_inline int
ipv4_is_later_fragment(const struct iphdr *iph)
{
    return (iph->frag_off & bpf_htons(0x1fff)) != 0;
}

/* Parses a TCP header (with options).  Returns its length or -1. */
static __always_inline int
parse_tcp(struct cursor *c, struct tcphdr **tcphp)
{
    struct tcphdr *th = c->pos;
    int len;

    if ((void *)(th + 1) > c->end)
        return -1;
    len = th->doff * 4;
    if (len < (int)sizeof *th)
        return -1;
    if (c->pos + len > c->end)
        return -1;
    c->pos += len;
    *tcphp = th;
    return len;
}

/* Parses a UDP header.  Returns the UDP length field (host order) or -1. */
static __always_inline int
parse_udp(struct cursor *c, struct udphdr **udphp)
{
    struct udphdr *uh = c->pos;

    if ((void *)(uh + 1) > c->end)
        return -1;
    c->pos = uh + 1;
    *udphp = uh;
    return bpf_ntohs(uh->len);
}

#endif /* okopy/parse.h */
