/* okopy/flow.h -- direction-independent IPv4 and IPv6 flow keys and TCP
 * sequence arithmetic, for filters that keep per-connection state.
 *
 * Both directions of a connection map to one key: endpoint 'a' is the one
 * with the lower (address, port) in host order, so the key reads naturally
 * when okopy shows it as JSON.  flow4_key_init() and flow6_key_init() say
 * which endpoint sent the packet, letting a filter keep per-direction
 * state in one value. */

#ifndef OKOPY_FLOW_H
#define OKOPY_FLOW_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <okopy/types.h>

/* Which endpoint of a flow4_key sent a packet. */
#define FLOW_FROM_A 0
#define FLOW_FROM_B 1

struct flow4_key {
    okopy_ipv4_t addr_a;
    okopy_ipv4_t addr_b;
    okopy_be16 port_a;
    okopy_be16 port_b;
    __u8 proto;
    __u8 pad[3];
};

/* Fills 'k' for a packet from 'saddr':'sport' to 'daddr':'dport' (network
 * order) and returns FLOW_FROM_A or FLOW_FROM_B for its sender. */
static __always_inline int
flow4_key_init(struct flow4_key *k, __be32 saddr, __be32 daddr,
               __be16 sport, __be16 dport, __u8 proto)
{
    __u32 s = bpf_ntohl(saddr), d = bpf_ntohl(daddr);
    int from_b = s > d || (s == d && bpf_ntohs(sport) > bpf_ntohs(dport));

    __builtin_memset(k, 0, sizeof *k);
    k->proto = proto;
    if (from_b) {
        k->addr_a = daddr;
        k->port_a = dport;
        k->addr_b = saddr;
        k->port_b = sport;
    } else {
        k->addr_a = saddr;
        k->port_a = sport;
        k->addr_b = daddr;
        k->port_b = dport;
    }
    return from_b ? FLOW_FROM_B : FLOW_FROM_A;
}

struct flow6_key {
    okopy_ipv6_t addr_a;
    okopy_ipv6_t addr_b;
    okopy_be16 port_a;
    okopy_be16 port_b;
    __u8 proto;
    __u8 pad[3];
};

/* -1, 0 or 1 as IPv6 address 'x' is below, equal to or above 'y' (as
 * numbers: network order, most significant byte first). */
static __always_inline int
ipv6_addr_cmp(const okopy_ipv6_t *x, const okopy_ipv6_t *y)
{
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __u32 a, b;

        __builtin_memcpy(&a, &x->b[4 * i], 4);
        __builtin_memcpy(&b, &y->b[4 * i], 4);
        if (a != b)
            return bpf_ntohl(a) < bpf_ntohl(b) ? -1 : 1;
    }
    return 0;
}

/* flow4_key_init() for IPv6. */
static __always_inline int
flow6_key_init(struct flow6_key *k, const okopy_ipv6_t *saddr,
               const okopy_ipv6_t *daddr, __be16 sport, __be16 dport,
               __u8 proto)
{
    int c = ipv6_addr_cmp(saddr, daddr);
    int from_b = c > 0 || (c == 0 && bpf_ntohs(sport) > bpf_ntohs(dport));

    __builtin_memset(k, 0, sizeof *k);
    k->proto = proto;
    if (from_b) {
        k->addr_a = *daddr;
        k->port_a = dport;
        k->addr_b = *saddr;
        k->port_b = sport;
    } else {
        k->addr_a = *saddr;
        k->port_a = sport;
        k->addr_b = *daddr;
        k->port_b = dport;
    }
    return from_b ? FLOW_FROM_B : FLOW_FROM_A;
}

/* Sequence number order modulo 2^32 (RFC 793 / RFC 1982). */
static __always_inline int
seq_before(__u32 a, __u32 b)
{
    return (__s32)(a - b) < 0;
}

static __always_inline int
seq_after(__u32 a, __u32 b)
{
    return (__s32)(a - b) > 0;
}

#endif /* okopy/flow.h */
