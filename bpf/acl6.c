/* acl6.c -- an ordered IPv6 rule set classified with bit vectors: bpf/acl.c
 * for IPv6, the classifier `okopy import iptables` gives an ip6tables-save
 * dump.
 *
 * Everything but the addresses is bpf/acl.c's (<okopy/acl.h>): the fields,
 * the rule vectors and their maps, the search for the first matching rule,
 * the verdicts and the connection states.  The addresses are looked up in
 * 'src6' and 'dst6', LPM tries on 128-bit addresses, and connections are
 * kept in 'conns' by struct flow6_key.  The protocol field is the
 * upper-layer header, found as ip6tables finds it: past hop-by-hop,
 * routing, destination options, fragment and authentication headers (at
 * most ACL6_MAX_EXT_HEADERS of them); a packet with more, or a fragment
 * other than the first, has no ports or flags (and the last header seen
 * as its protocol).  ICMPv6 type and code are the ports, as ICMP's are in
 * bpf/acl.c.
 *
 * Connection state follows nf_conntrack's IPv6 rules: ICMPv6 echo (128,
 * 129) and node information (139, 140) are queries and replies; types
 * below 128 are errors, RELATED when the header they quote (past the
 * quoted packet's extension headers, whether the error has some or not)
 * is a known connection's; neighbour discovery, multicast listener and
 * multicast router discovery messages (130 to 136, 143, 151, 152) are
 * UNTRACKED; other types are INVALID.
 *
 * Verdicts: the matching rule's; XDP_PASS for frames that are not IPv6,
 * which this ACL does not classify. */

#include <okopy/acl.h>

/* Extension headers followed to the upper-layer header. */
#ifndef ACL6_MAX_EXT_HEADERS
#define ACL6_MAX_EXT_HEADERS 6
#endif

#define ACL6_NEXTHDR_HOP 0
#define ACL6_NEXTHDR_ROUTING 43
#define ACL6_NEXTHDR_FRAGMENT 44
#define ACL6_NEXTHDR_AUTH 51
#define ACL6_NEXTHDR_ICMP 58
#define ACL6_NEXTHDR_DEST 60

struct acl_key_addr6 {
    __u32 prefixlen;
    okopy_ipv6_t addr;
};

ACL_LPM(src6, struct acl_key_addr6);
ACL_LPM(dst6, struct acl_key_addr6);

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ACL_MAX_CONNS);
    __type(key, struct flow6_key);
    __type(value, struct acl_conn);
} conns SEC(".maps");

/* What the parser found. */
struct acl6_pkt {
    struct acl_l4 l4;
    okopy_ipv6_t saddr, daddr;
    struct flow6_key inner;     /* the connection an ICMPv6 error quotes */
};

/* What ICMPv6 type 'type' is to conntrack; '*query': the request type of
 * a query or reply. */
static __always_inline __u8
icmp6_kind(__u8 type, __u8 *query)
{
    *query = type;
    if (type < 128)
        return ACL_ICMP_ERROR;
    switch (type) {
    case 128: case 139:
        return ACL_ICMP_REQUEST;
    case 129: case 140:
        *query = type - 1;
        return ACL_ICMP_REPLY;
    case 130: case 131: case 132: case 133: case 134: case 135: case 136:
    case 143: case 151: case 152:
        return ACL_ICMP_UNTRACKED;
    }
    return ACL_ICMP_OTHER;
}

static __always_inline int
is_ext_header(__u8 nh)
{
    return nh == ACL6_NEXTHDR_HOP || nh == ACL6_NEXTHDR_ROUTING
           || nh == ACL6_NEXTHDR_DEST || nh == ACL6_NEXTHDR_FRAGMENT
           || nh == ACL6_NEXTHDR_AUTH;
}

/* Follows the extension headers from 'nh' (the fixed header's next
 * header) to the upper-layer header.  Returns its number, or -1 when the
 * packet has no transport header to read: a later fragment, or more
 * extension headers than ACL6_MAX_EXT_HEADERS ('*last': the last header
 * number seen, the protocol rules match then). */
static __always_inline int
skip_ext_headers(struct cursor *c, __u8 nh, __u8 *last)
{
#pragma unroll
    for (int i = 0; i < ACL6_MAX_EXT_HEADERS; i++) {
        __u8 *h = c->pos;

        *last = nh;
        if (!is_ext_header(nh))
            return nh;
        if ((void *)(h + 8) > c->end)
            return -1;
        if (nh == ACL6_NEXTHDR_FRAGMENT) {
            *last = h[0];
            if (((h[2] << 8) | h[3]) & 0xfff8)
                return -1;
            c->pos = h + 8;
        } else if (nh == ACL6_NEXTHDR_AUTH) {
            c->pos = h + ((h[1] + 2) << 2);
        } else {
            c->pos = h + ((h[1] + 1) << 3);
        }
        nh = h[0];
    }
    *last = nh;
    return is_ext_header(nh) ? -1 : nh;
}

/* Parses the IPv6 header an ICMPv6 error quotes, past its extension
 * headers, and the transport header after them into 'p->inner' (as
 * conntrack finds the connection an error is about). */
static __always_inline void
parse_icmp6_inner(struct cursor *c, struct acl6_pkt *p)
{
    struct ipv6hdr *ip6h = c->pos;
    okopy_ipv6_t s, d;
    __u16 a = 0, b = 0;
    __u8 *l4, last;
    int nh;

    if ((void *)(ip6h + 1) > c->end)
        return;
    c->pos = ip6h + 1;
    nh = skip_ext_headers(c, ip6h->nexthdr, &last);
    l4 = c->pos;
    if (nh < 0 || (void *)(l4 + 8) > c->end)
        return;
    if (nh == IPPROTO_TCP || nh == IPPROTO_UDP) {
        a = bpf_htons((l4[0] << 8) | l4[1]);
        b = bpf_htons((l4[2] << 8) | l4[3]);
    } else if (nh == ACL6_NEXTHDR_ICMP) {
        __u8 q, kind = icmp6_kind(l4[0], &q);

        if (kind != ACL_ICMP_REQUEST && kind != ACL_ICMP_REPLY)
            q = 0xff;
        a = bpf_htons((l4[4] << 8) | l4[5]);
        b = bpf_htons(q);
    }
    __builtin_memcpy(&s, &ip6h->saddr, sizeof s);
    __builtin_memcpy(&d, &ip6h->daddr, sizeof d);
    flow6_key_init(&p->inner, &s, &d, a, b, nh);
    if (nh == ACL6_NEXTHDR_ICMP) {
        p->inner.port_a = a;
        p->inner.port_b = b;
    }
    p->l4.inner_ok = 1;
}

/* 'v', through the stack a byte at a time: the kernel verifier (Linux
 * 6.18) knows less of what comes back than of 'v' (for a pointer
 * difference, nothing), so paths that differed only in it look alike
 * and are checked once.  With both walks of an ICMPv6 error, acl6 took
 * the verifier past its 1M-instruction budget without this, 90 ms with
 * it. */
static __always_inline __u32
forget(__u32 v)
{
    volatile __u8 b[4];

    b[0] = v;
    b[1] = v >> 8;
    b[2] = v >> 16;
    b[3] = v >> 24;
    return b[0] | (b[1] << 8) | (b[2] << 16) | ((__u32)b[3] << 24);
}

/* Makes the kernel verifier forget which way the walk over the extension
 * headers went, so that it checks what follows once rather than once per
 * path of the walk (with an ICMPv6 error's quoted packet walked too, the
 * paths multiply past its budget).  The offset is bounded for
 * the verifier: ACL6_MAX_EXT_HEADERS headers of at most 2,048 bytes end
 * before 16,384; past that, the packet would be read as having no
 * transport header. */
static __always_inline void
forget_walk(struct xdp_md *ctx, struct cursor *c, int *nh, __u8 *last)
{
    void *data = (void *)(long)ctx->data;
    __u32 off = forget(c->pos - data);

    *nh = (int)forget(*nh);
    *last = forget(*last);
    if (off > 16383) {
        *nh = -1;
        return;
    }
    /* The bound on the register the pointer is made from (the compiler
     * would test a copy). */
    asm volatile("%[off] &= 16383" : [off] "+r"(off));
    c->pos = data + off;
}

/* Returns 0 for an IPv6 packet parsed into 'p', -1 for anything else. */
static __always_inline int
parse_packet(struct xdp_md *ctx, struct acl6_pkt *p)
{
    struct cursor c;
    struct ipv6hdr *ip6h;
    __u8 last, *ic;
    int nh;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IPV6))
        return -1;
    nh = parse_ipv6(&c, &ip6h);
    if (nh < 0)
        return -1;
    __builtin_memcpy(&p->saddr, &ip6h->saddr, sizeof p->saddr);
    __builtin_memcpy(&p->daddr, &ip6h->daddr, sizeof p->daddr);
    nh = skip_ext_headers(&c, nh, &last);
    forget_walk(ctx, &c, &nh, &last);
    p->l4.proto = last;
    p->l4.is_icmp = last == ACL6_NEXTHDR_ICMP;
    if (nh < 0)
        return 0;
    ic = acl_parse_l4(&c, &p->l4);
    if (ic) {
        p->l4.icmp = icmp6_kind(ic[0], &p->l4.icmp_query);
        if (p->l4.icmp == ACL_ICMP_ERROR)
            parse_icmp6_inner(&c, p);
    }
    return 0;
}

SEC("xdp")
int acl6(struct xdp_md *ctx)
{
    const struct acl_bits *vsrc, *vdst;
    const struct acl_config *cfg;
    struct acl6_pkt p = { 0 };
    struct flow6_key ckey = { 0 };
    struct acl_key_addr6 kaddr;
    int from = 0, open = 0;
    __u32 zero = 0, cls, st;
    __u64 now = 0;

    if (parse_packet(ctx, &p) < 0)
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg)
        return XDP_ABORTED;
    kaddr.prefixlen = 128;
    kaddr.addr = p.saddr;
    cls = trie_class(&src6, &kaddr);
    vsrc = bpf_map_lookup_elem(&vectors, &cls);
    kaddr.addr = p.daddr;
    cls = trie_class(&dst6, &kaddr);
    vdst = bpf_map_lookup_elem(&vectors, &cls);
    if (cfg->track) {
        __be16 a, b;

        now = bpf_ktime_get_ns();
        acl_conn_ports(&p.l4, &a, &b);
        from = flow6_key_init(&ckey, &p.saddr, &p.daddr, a, b, p.l4.proto);
        if (p.l4.is_icmp) {
            /* As in bpf/acl.c: the type gives an ICMPv6 query's
             * direction. */
            ckey.port_a = a;
            ckey.port_b = b;
        }
        st = acl_conn_state(&p.l4, cfg, now, &conns, &ckey, from,
                            p.l4.inner_ok ? &p.inner : NULL, &open);
    } else {
        st = ACL_ST_UNTRACKED;
    }
    return acl_decide(ctx, cfg, &p.l4, vsrc, vdst, st, &conns, &ckey, from,
                      open, now);
}

char LICENSE[] SEC("license") = "GPL";
