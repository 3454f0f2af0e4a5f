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

/* Parses Ethernet, IPv4 and TCP: the first segment of an IPv4 TCP packet.
 * Returns the TCP header length, or -1 for anything else (other
 * protocols, later fragments, truncated headers). */
static __always_inline int
parse_ipv4_tcp(struct cursor *c, struct iphdr **iphp, struct tcphdr **tcphp)
{
    if (parse_eth(c, NULL) != bpf_htons(ETH_P_IP) ||
        parse_ipv4(c, iphp) != IPPROTO_TCP || ipv4_is_later_fragment(*iphp))
        return -1;
    return parse_tcp(c, tcphp);
}

/* TCP flag bits, as tcp_flags() returns them. */
#define OKOPY_TCP_FIN 0x01
#define OKOPY_TCP_SYN 0x02
#define OKOPY_TCP_RST 0x04
#define OKOPY_TCP_PSH 0x08
#define OKOPY_TCP_ACK 0x10

/* The flags byte of a TCP header parse_tcp() handed out. */
static __always_inline __u8
tcp_flags(const struct tcphdr *th)
{
    return ((const __u8 *)th)[13];
}

/* TCP options parse_tcp_options() records, in order, at most. */
#ifndef OKOPY_TCP_MAX_OPTS
#define OKOPY_TCP_MAX_OPTS 16
#endif

/* TCP option kinds (RFC 9293, 7323, 2018). */
#define OKOPY_TCPOPT_EOL 0
#define OKOPY_TCPOPT_NOP 1
#define OKOPY_TCPOPT_MSS 2
#define OKOPY_TCPOPT_WSCALE 3
#define OKOPY_TCPOPT_SACK_OK 4
#define OKOPY_TCPOPT_TIMESTAMP 8
/* Not a kind: fills tcp_opts.kinds beyond the options recorded. */
#define OKOPY_TCPOPT_NONE 0xff

/* What parse_tcp_options() found.  Multi-byte values are host order. */
struct tcp_opts {
    __u8 kinds[OKOPY_TCP_MAX_OPTS]; /* option kinds in order, then
                                     * OKOPY_TCPOPT_NONE */
    __u8 n;             /* options recorded in 'kinds' */
    __u8 wscale;
    __u8 has_wscale;
    __u8 sack_ok;
    __u8 has_ts;
    __u8 malformed;     /* a length ran past the header, or too many */
    __u16 mss;          /* 0: absent */
    __u32 ts_val;
    __u32 ts_ecr;
};

/* Walks the options of 'th' (a header parse_tcp() handed out, so its
 * doff * 4 bytes are in the packet) into 'o', stopping at the end of list
 * option, at the end of the header, or after OKOPY_TCP_MAX_OPTS options.
 * The loop is unrolled: each step reads at a bounded offset, checked
 * against 'end' before every access.  Returns 0, or -1 if truncated. */
static __always_inline int
parse_tcp_options(const struct tcphdr *th, const void *end, struct tcp_opts *o)
{
    const __u8 *opts = (const __u8 *)(th + 1);
    __u32 room = th->doff * 4 - sizeof *th;
    __u32 off = 0;

    __builtin_memset(o, 0, sizeof *o);
    __builtin_memset(o->kinds, OKOPY_TCPOPT_NONE, sizeof o->kinds);
#pragma unroll
    for (int i = 0; i < OKOPY_TCP_MAX_OPTS; i++) {
        const __u8 *p;
        __u8 kind, len;

        if (off >= room)
            return 0;
        p = opts + (off & 63);  /* room <= 40: the mask only tells the
                                 * verifier so */
        if ((const void *)(p + 1) > end)
            return -1;
        kind = p[0];
        o->kinds[i] = kind;
        o->n = i + 1;
        if (kind == OKOPY_TCPOPT_EOL)
            return 0;
        if (kind == OKOPY_TCPOPT_NOP) {
            off++;
            continue;
        }
        if ((const void *)(p + 2) > end)
            return -1;
        len = p[1];
        if (len < 2 || off + len > room) {
            o->malformed = 1;
            return 0;
        }
        if (kind == OKOPY_TCPOPT_MSS && len == 4) {
            if ((const void *)(p + 4) > end)
                return -1;
            o->mss = (p[2] << 8) | p[3];
        } else if (kind == OKOPY_TCPOPT_WSCALE && len == 3) {
            if ((const void *)(p + 3) > end)
                return -1;
            o->wscale = p[2];
            o->has_wscale = 1;
        } else if (kind == OKOPY_TCPOPT_SACK_OK) {
            o->sack_ok = 1;
        } else if (kind == OKOPY_TCPOPT_TIMESTAMP && len == 10) {
            if ((const void *)(p + 10) > end)
                return -1;
            o->ts_val = ((__u32)p[2] << 24) | ((__u32)p[3] << 16) |
                        ((__u32)p[4] << 8) | p[5];
            o->ts_ecr = ((__u32)p[6] << 24) | ((__u32)p[7] << 16) |
                        ((__u32)p[8] << 8) | p[9];
            o->has_ts = 1;
        }
        off += len;
    }
    if (off < room)
        o->malformed = 1;       /* more options than recorded */
    return 0;
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

/* DNS message header (RFC 1035 4.1.1), all fields network order. */
struct dnshdr {
    __be16 id;
    __be16 flags;
    __be16 qdcount;
    __be16 ancount;
    __be16 nscount;
    __be16 arcount;
};

/* dnshdr.flags bits (network order applied by the caller). */
#define OKOPY_DNS_QR 0x8000     /* 1: response */

/* Parses a DNS header at the cursor (the payload of a UDP datagram).
 * Returns the host-order flags or -1 if truncated. */
static __always_inline int
parse_dns(struct cursor *c, struct dnshdr **dnsp)
{
    struct dnshdr *dns = c->pos;

    if ((void *)(dns + 1) > c->end)
        return -1;
    c->pos = dns + 1;
    *dnsp = dns;
    return bpf_ntohs(dns->flags);
}

#endif /* okopy/parse.h */
