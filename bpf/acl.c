/* acl.c -- an ordered IPv4 rule set classified with bit vectors.
 *
 * The rules are data, not code: each rule is a bit position, and for
 * every field a map says which rules a value of that field allows.  A
 * packet's fields are each looked up once; the AND of the bit vectors
 * found has the rules all of its fields allow, and the lowest set bit is
 * the first matching rule (the bit-vector search of Lakshman and
 * Stiliadis, as bpf-iptables uses it).  Adding, removing or reordering a
 * rule is a few map writes, done by the controller (okopy/acl/), never a
 * new program.
 *
 * The fields, and the map each is looked up in:
 *   ACL_F_IN_PORT  in_port   LPM trie on the 32-bit input port
 *                            (ctx->ingress_ifindex: the OpenFlow in_port)
 *   ACL_F_SRC      src       LPM trie on the IPv4 source
 *   ACL_F_DST      dst       LPM trie on the IPv4 destination
 *   ACL_F_PROTO    proto     array, by IP protocol
 *   ACL_F_SPORT    sport     LPM trie on the 16-bit source port (ICMP: the
 *                            type)
 *   ACL_F_DPORT    dport     LPM trie on the 16-bit destination port
 *                            (ICMP: the code)
 *   ACL_F_FLAGS    flags     LPM trie on the TCP flags byte, its bits
 *                            reordered SYN ACK RST FIN PSH URG ECE CWR
 *                            (most significant first), so that the
 *                            usual masks are prefixes: --syn (SYN, RST,
 *                            ACK, FIN) is one entry
 *   ACL_F_STATE    state     array, by connection state (ACL_ST_*)
 * A field's entry holds the rules that allow every value the entry
 * covers: for a trie, the compiler writes each prefix of each rule's
 * value set and gives every entry the rules whose sets contain it, so the
 * longest match answers for the value.  A trie entry holds a class, the
 * index of its rule vector in the 'vectors' table: trie nodes stay a few
 * dozen bytes, so that a walk down a trie of thousands of prefixes stays
 * in the caches, and the one vector read is a direct array access.  Rules
 * that do not look at a field at all are in that field's vector of the
 * 'any' map instead (one write for a wildcard).  Non-first fragments and
 * truncated transport headers have no ports and no flags, and packets
 * other than TCP no flags: only rules that do not look at those match
 * them, as in iptables.
 *
 * Connection state (only when config.track is set) follows the kernel's
 * conntrack as iptables sees it, for the packets this filter sees:
 *   NEW          a packet that could open a connection: TCP SYN, or a
 *                bare ACK (conntrack picks up connections in the middle),
 *                a UDP or other IP datagram, an ICMP echo, timestamp,
 *                information or address-mask request; or any packet of a
 *                connection in its opening direction while no reply has
 *                been seen;
 *   ESTABLISHED  a reply, and every packet after one;
 *   RELATED      an ICMP error about a known connection;
 *   INVALID      TCP with a flag combination conntrack refuses, a first
 *                TCP packet that cannot open a connection (SYN-ACK, FIN,
 *                RST), an ICMP reply or error with no connection.
 * A connection is recorded only when its first packet passes (conntrack
 * confirms entries only for accepted packets); a connection reset, or
 * closed in both directions, opens again with a new SYN.  Windows are not
 * tracked (as with nf_conntrack_tcp_be_liberal=1).
 *
 * Maps:
 *   in_port, src, dst, sport, dport, flags
 *              LPM tries -> __u32 class
 *   vectors    array[ACL_MAX_CLASSES] of struct acl_bits, by class; class
 *              0 is never written: no rule (a field the packet lacks).
 *              okopy/acl/ never changes the vector of a class a trie
 *              entry points to: a changed vector gets a new class, and
 *              the entry is pointed at it in one write, so that a packet
 *              classified while a rule changes sees the old or the new
 *              vector of each field, never a mix
 *   proto      array[256] of struct acl_bits
 *   state      array[ACL_ST_N] of struct acl_bits
 *   any        array[1] of struct acl_any: per field, the rules that do
 *              not look at it
 *   rules      array[ACL_MAX_RULES + 2] of struct acl_rule: each rule's
 *              verdict, counters and id; the last two entries are the
 *              default policy's, used when no rule matches, one for each
 *              entry of 'live'.  Rules keep their positions across
 *              translations, with room left between them, so one rule
 *              added is a few map writes
 *   live       array[2] of struct acl_bits: the rules in force, in the
 *              entry config.live names; a rule whose bit is not there
 *              matches nothing
 *   config     array[1] of struct acl_config
 *   conns      LRU hash struct flow4_key -> struct acl_conn
 * A change of any size takes effect at once, in the one write of config
 * that switches 'live' to its other entry: okopy/acl/ first writes the
 * rules added or moved at positions no rule in force holds, and the
 * other entry of 'live' with the new rule set (and the default of that
 * entry), keeping the bits of the rules it takes out of force until
 * then; what no rule in force needs any more is deleted before the
 * switch, and the bits of the rules taken out are cleared by the next
 * change.  So a packet
 * classified while the controller writes meets the rules before the
 * change or those after, never some of each.
 * Verdicts: the matching rule's (okopy/acl/ writes XDP_PASS for ACCEPT,
 *   XDP_DROP for DROP, ACL_VERDICT_REJECT for REJECT); XDP_PASS for
 *   frames that are not IPv4, which this ACL does not classify.
 *
 * bpf/acl6.c is the same classifier for IPv6 (its address tries are
 * 'src6' and 'dst6'); what the two share is in <okopy/acl.h>. */

#include <okopy/acl.h>

struct acl_key_addr {
    __u32 prefixlen;
    okopy_ipv4_t addr;
};

ACL_LPM(src, struct acl_key_addr);
ACL_LPM(dst, struct acl_key_addr);

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ACL_MAX_CONNS);
    __type(key, struct flow4_key);
    __type(value, struct acl_conn);
} conns SEC(".maps");

/* What the parser found. */
struct acl_pkt {
    struct acl_l4 l4;
    __be32 saddr, daddr;
    struct flow4_key inner;     /* the connection an ICMP error quotes */
};

/* What ICMP type 'type' is to conntrack; '*query': the request type of a
 * query or reply. */
static __always_inline __u8
icmp_kind(__u8 type, __u8 *query)
{
    *query = type;
    switch (type) {
    case 8: case 13: case 15: case 17:
        return ACL_ICMP_REQUEST;
    case 0:
        *query = 8;
        return ACL_ICMP_REPLY;
    case 14: case 16: case 18:
        *query = type - 1;
        return ACL_ICMP_REPLY;
    case 3: case 4: case 5: case 11: case 12:
        return ACL_ICMP_ERROR;
    }
    return ACL_ICMP_OTHER;
}

/* Parses the IPv4 header and the transport header an ICMP error quotes
 * into 'p->inner'. */
static __always_inline void
parse_icmp_inner(struct cursor *c, struct acl_pkt *p)
{
    struct iphdr *iph = c->pos;
    __u8 *l4;
    __u16 a = 0, b = 0;
    int len;

    if ((void *)(iph + 1) > c->end)
        return;
    len = iph->ihl * 4;
    if (len < (int)sizeof *iph || len > 60)
        return;
    l4 = (__u8 *)iph + (len & 63);
    if ((void *)(l4 + 8) > c->end)
        return;
    if (iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP) {
        a = bpf_htons((l4[0] << 8) | l4[1]);
        b = bpf_htons((l4[2] << 8) | l4[3]);
    } else if (iph->protocol == IPPROTO_ICMP) {
        __u8 q, kind = icmp_kind(l4[0], &q);

        if (kind != ACL_ICMP_REQUEST && kind != ACL_ICMP_REPLY)
            q = 0xff;
        a = bpf_htons((l4[4] << 8) | l4[5]);
        b = bpf_htons(q);
    }
    flow4_key_init(&p->inner, iph->saddr, iph->daddr, a, b, iph->protocol);
    if (iph->protocol == IPPROTO_ICMP) {
        p->inner.port_a = a;
        p->inner.port_b = b;
    }
    p->l4.inner_ok = 1;
}

/* Returns 0 for an IPv4 packet parsed into 'p', -1 for anything else. */
static __always_inline int
parse_packet(struct xdp_md *ctx, struct acl_pkt *p)
{
    struct cursor c;
    struct iphdr *iph;
    __u8 *ic;
    int proto;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return -1;
    proto = parse_ipv4(&c, &iph);
    if (proto < 0)
        return -1;
    p->saddr = iph->saddr;
    p->daddr = iph->daddr;
    p->l4.proto = proto;
    p->l4.is_icmp = proto == IPPROTO_ICMP;
    if (ipv4_is_later_fragment(iph))
        return 0;
    ic = acl_parse_l4(&c, &p->l4);
    if (ic) {
        p->l4.icmp = icmp_kind(ic[0], &p->l4.icmp_query);
        if (p->l4.icmp == ACL_ICMP_ERROR)
            parse_icmp_inner(&c, p);
    }
    return 0;
}

SEC("xdp")
int acl(struct xdp_md *ctx)
{
    const struct acl_bits *vsrc, *vdst;
    const struct acl_config *cfg;
    struct acl_pkt p = { 0 };
    struct flow4_key ckey = { 0 };
    struct acl_key_addr kaddr;
    int from = 0, open = 0;
    __u32 zero = 0, cls, st;
    __u64 now = 0;

    if (parse_packet(ctx, &p) < 0)
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg)
        return XDP_ABORTED;
    kaddr.prefixlen = 32;
    kaddr.addr = p.saddr;
    cls = trie_class(&src, &kaddr);
    vsrc = bpf_map_lookup_elem(&vectors, &cls);
    kaddr.addr = p.daddr;
    cls = trie_class(&dst, &kaddr);
    vdst = bpf_map_lookup_elem(&vectors, &cls);
    if (cfg->track) {
        __be16 a, b;

        now = bpf_ktime_get_ns();
        acl_conn_ports(&p.l4, &a, &b);
        from = flow4_key_init(&ckey, p.saddr, p.daddr, a, b, p.l4.proto);
        if (p.l4.is_icmp) {
            /* Both ends of an ICMP query share the id and the request
             * type: the direction comes from the type, not from the
             * addresses. */
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
