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
 *   rules      array[ACL_MAX_RULES + 1] of struct acl_rule: each rule's
 *              verdict, counters and id; the last entry is
 *              the default policy's, used when no rule matches.  Rules
 *              keep their positions across translations, with room left
 *              between them, so one rule added is a few map writes
 *   config     array[1] of struct acl_config
 *   conns      LRU hash struct flow4_key -> struct acl_conn
 * Verdicts: the matching rule's (okopy/acl/ writes XDP_PASS for ACCEPT,
 *   XDP_DROP for DROP, ACL_VERDICT_REJECT for REJECT); XDP_PASS for
 *   frames that are not IPv4, which this ACL does not classify. */

#include <okopy/flow.h>
#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

/* Rules (bit positions); a multiple of 64. */
#ifndef ACL_MAX_RULES
#define ACL_MAX_RULES 1024
#endif
#define ACL_WORDS (ACL_MAX_RULES / 64)
#define ACL_SUMMARY ((ACL_WORDS + 63) / 64)

#ifndef ACL_MAX_PREFIXES
#define ACL_MAX_PREFIXES 65536
#endif
/* Entries of the vectors table: one per trie entry, all tries together. */
#ifndef ACL_MAX_CLASSES
#define ACL_MAX_CLASSES 65536
#endif
/* The class of no rule: vectors[0], never written. */
#define ACL_NO_RULES 0
#ifndef ACL_MAX_CONNS
#define ACL_MAX_CONNS 65536
#endif
/* Idle time after which a connection is forgotten, when config holds 0:
 * TCP connections that saw a reply, and everything else. */
#ifndef ACL_TCP_TIMEOUT_NS
#define ACL_TCP_TIMEOUT_NS (432000ULL * 1000000000ULL)
#endif
#ifndef ACL_OTHER_TIMEOUT_NS
#define ACL_OTHER_TIMEOUT_NS (180ULL * 1000000000ULL)
#endif

/* The verdict okopy/acl/ gives REJECT: dropped, unless a flow on
 * bpf_verdict says otherwise. */
#define ACL_VERDICT_REJECT 16


enum acl_field {
    ACL_F_IN_PORT,
    ACL_F_SRC,
    ACL_F_DST,
    ACL_F_PROTO,
    ACL_F_SPORT,
    ACL_F_DPORT,
    ACL_F_FLAGS,
    ACL_F_STATE,
    ACL_F_N,
};

enum acl_state {
    ACL_ST_INVALID,
    ACL_ST_NEW,
    ACL_ST_ESTABLISHED,
    ACL_ST_RELATED,
    ACL_ST_UNTRACKED,
    ACL_ST_N,
};

/* A set of rules: bit r of w[] is rule r; bit j of summary[] says w[j]
 * is not zero, so that a search skips the words no field allows. */
struct acl_bits {
    __u64 summary[ACL_SUMMARY];
    __u64 w[ACL_WORDS];
};

struct acl_any {
    struct acl_bits field[ACL_F_N];
};

struct acl_rule {
    __u32 verdict;
    __u32 pad;
    __u64 packets;
    __u64 bytes;
    __u64 id;           /* okopy/acl/: finds the rule's position again */
};

struct acl_config {
    __u32 track;        /* 1: some rule looks at the connection state */
    __u32 pad;
    __u64 tcp_timeout_ns;
    __u64 other_timeout_ns;
};

struct acl_key32 {
    __u32 prefixlen;
    okopy_be32 value;
};

struct acl_key_addr {
    __u32 prefixlen;
    okopy_ipv4_t addr;
};

struct acl_key16 {
    __u32 prefixlen;
    okopy_be16 value;
} __attribute__((packed));

struct acl_key8 {
    __u32 prefixlen;
    __u8 value;
} __attribute__((packed));

/* acl_conn.flags bits. */
#define ACL_CONN_SEEN_REPLY 1
#define ACL_CONN_CLOSED 2       /* reset, or FIN both ways */
#define ACL_CONN_FIN_A 4
#define ACL_CONN_FIN_B 8

struct acl_conn {
    __u8 origin;        /* FLOW_FROM_A / FLOW_FROM_B: who opened it */
    __u8 flags;
    __u8 pad[6];
    __u64 last_ns;
    __u64 packets;
};

#define ACL_LPM(NAME, KEY)                              \
    struct {                                            \
        __uint(type, BPF_MAP_TYPE_LPM_TRIE);            \
        __uint(max_entries, ACL_MAX_PREFIXES);          \
        __uint(map_flags, BPF_F_NO_PREALLOC);           \
        __type(key, KEY);                               \
        __type(value, __u32);                           \
    } NAME SEC(".maps")

#define ACL_ARRAY(NAME, N, VALUE)                       \
    struct {                                            \
        __uint(type, BPF_MAP_TYPE_ARRAY);               \
        __uint(max_entries, N);                         \
        __type(key, __u32);                             \
        __type(value, VALUE);                           \
    } NAME SEC(".maps")

ACL_LPM(in_port, struct acl_key32);
ACL_LPM(src, struct acl_key_addr);
ACL_LPM(dst, struct acl_key_addr);
ACL_LPM(sport, struct acl_key16);
ACL_LPM(dport, struct acl_key16);
ACL_ARRAY(proto, 256, struct acl_bits);
ACL_LPM(flags, struct acl_key8);
ACL_ARRAY(vectors, ACL_MAX_CLASSES, struct acl_bits);
ACL_ARRAY(state, ACL_ST_N, struct acl_bits);
ACL_ARRAY(any, 1, struct acl_any);
ACL_ARRAY(rules, ACL_MAX_RULES + 1, struct acl_rule);
ACL_ARRAY(config, 1, struct acl_config);

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ACL_MAX_CONNS);
    __type(key, struct flow4_key);
    __type(value, struct acl_conn);
} conns SEC(".maps");

/* What the parser found. */
struct acl_pkt {
    __be32 saddr, daddr;
    __u16 sport, dport;         /* host order; ICMP: type and code */
    __u8 proto;
    __u8 tcp_flags;
    __u8 has_l4;                /* ports (and TCP flags) are known */
    __u8 icmp_inner_ok;         /* an ICMP error's inner header parsed */
    struct flow4_key inner;     /* its connection, when icmp_inner_ok */
    __u16 icmp_id;
};

/* Index of the lowest set bit of 'v' (nonzero): the number of bits below
 * it, counted without branches, so that the verifier sees one path rather
 * than one per bit position. */
static __always_inline __u32
lowest_bit(__u64 v)
{
    __u64 x = (v & -v) - 1;

    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (x * 0x0101010101010101ULL) >> 56;
}

/* The TCP flags byte as the flags trie keys it: SYN ACK RST FIN PSH URG
 * ECE CWR, most significant bit first. */
static __always_inline __u8
flags_key(__u8 f)
{
    return ((f & 0x02) << 6) | ((f & 0x10) << 2) | ((f & 0x04) << 3)
           | ((f & 0x01) << 4) | (f & 0x08) | ((f & 0x20) >> 3)
           | ((f & 0x40) >> 5) | ((f & 0x80) >> 7);
}

/* The class a trie gives a value (its longest match), or one past the
 * vectors table when the trie has no root: an ACL not yet written. */
static __always_inline __u32
trie_class(void *trie, const void *key)
{
    const __u32 *c = bpf_map_lookup_elem(trie, key);

    return c ? *c : ACL_MAX_CLASSES;
}

static __always_inline int
icmp_is_error(__u8 type)
{
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/* The request type an ICMP query or reply belongs to, or 0xff for types
 * conntrack does not track as queries. */
static __always_inline __u8
icmp_query(__u8 type, int *is_reply)
{
    *is_reply = 0;
    switch (type) {
    case 8: case 13: case 15: case 17:
        return type;
    case 0:
        *is_reply = 1;
        return 8;
    case 14: case 16: case 18:
        *is_reply = 1;
        return type - 1;
    }
    return 0xff;
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
        int reply;
        __u8 q = icmp_query(l4[0], &reply);

        a = bpf_htons((l4[4] << 8) | l4[5]);
        b = bpf_htons(q);
    }
    flow4_key_init(&p->inner, iph->saddr, iph->daddr, a, b, iph->protocol);
    if (iph->protocol == IPPROTO_ICMP) {
        p->inner.port_a = a;
        p->inner.port_b = b;
    }
    p->icmp_inner_ok = 1;
}

/* Returns 0 for an IPv4 packet parsed into 'p', -1 for anything else. */
static __always_inline int
parse_packet(struct xdp_md *ctx, struct acl_pkt *p)
{
    struct cursor c;
    struct iphdr *iph;
    int proto;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return -1;
    proto = parse_ipv4(&c, &iph);
    if (proto < 0)
        return -1;
    p->saddr = iph->saddr;
    p->daddr = iph->daddr;
    p->proto = proto;
    if (ipv4_is_later_fragment(iph))
        return 0;
    if (proto == IPPROTO_TCP) {
        struct tcphdr *th;

        if (parse_tcp(&c, &th) < 0)
            return 0;
        p->sport = bpf_ntohs(th->source);
        p->dport = bpf_ntohs(th->dest);
        p->tcp_flags = tcp_flags(th);
        p->has_l4 = 1;
    } else if (proto == IPPROTO_UDP) {
        struct udphdr *uh = c.pos;

        if ((void *)(uh + 1) > c.end)
            return 0;
        p->sport = bpf_ntohs(uh->source);
        p->dport = bpf_ntohs(uh->dest);
        p->has_l4 = 1;
    } else if (proto == IPPROTO_ICMP) {
        __u8 *ic = c.pos;

        if ((void *)(ic + 8) > c.end)
            return 0;
        p->sport = ic[0];
        p->dport = ic[1];
        p->icmp_id = (ic[4] << 8) | ic[5];
        p->has_l4 = 1;
        if (icmp_is_error(ic[0])) {
            c.pos = ic + 8;
            parse_icmp_inner(&c, p);
        }
    }
    return 0;
}

/* Flags that make conntrack call a TCP packet invalid, after ignoring
 * PSH, ECE and CWR: the valid combinations are SYN, SYN|URG, SYN|ACK,
 * RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK and ACK|URG. */
static __always_inline int
tcp_flags_valid(__u8 f)
{
    const __u64 valid = (1ULL << 0x02) | (1ULL << 0x22) | (1ULL << 0x12) |
                        (1ULL << 0x04) | (1ULL << 0x14) | (1ULL << 0x11) |
                        (1ULL << 0x31) | (1ULL << 0x10) | (1ULL << 0x30);

    return (valid >> (f & 0x37)) & 1;
}

/* What connection tracking says of 'p'.  Updates a known connection (as
 * conntrack does before the rules run); for a packet that would open one,
 * fills '*open' and returns ACL_ST_NEW, and the caller records it if the
 * packet passes. */
static __always_inline int
conn_state(const struct acl_pkt *p, const struct acl_config *cfg, __u64 now,
           struct flow4_key *key, int *from, int *open)
{
    __be16 a = 0, b = 0;
    struct acl_conn *conn;
    __u64 timeout;
    int reply = 0;

    *open = 0;
    if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
        if (!p->has_l4)
            return ACL_ST_INVALID;
        a = bpf_htons(p->sport);
        b = bpf_htons(p->dport);
    } else if (p->proto == IPPROTO_ICMP) {
        __u8 q;

        if (!p->has_l4)
            return ACL_ST_INVALID;
        if (icmp_is_error(p->sport)) {
            if (p->icmp_inner_ok && bpf_map_lookup_elem(&conns, &p->inner))
                return ACL_ST_RELATED;
            return ACL_ST_INVALID;
        }
        q = icmp_query(p->sport, &reply);
        if (q == 0xff)
            return ACL_ST_INVALID;
        a = bpf_htons(p->icmp_id);
        b = bpf_htons(q);
    }
    *from = flow4_key_init(key, p->saddr, p->daddr, a, b, p->proto);
    if (p->proto == IPPROTO_ICMP) {
        /* Both ends of an ICMP query share the id and the request type:
         * the direction comes from the type, not from the addresses. */
        key->port_a = a;
        key->port_b = b;
    }

    if (p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
        return ACL_ST_INVALID;

    conn = bpf_map_lookup_elem(&conns, key);
    if (conn) {
        timeout = cfg->other_timeout_ns ? cfg->other_timeout_ns
                                        : ACL_OTHER_TIMEOUT_NS;
        if (p->proto == IPPROTO_TCP && (conn->flags & ACL_CONN_SEEN_REPLY))
            timeout = cfg->tcp_timeout_ns ? cfg->tcp_timeout_ns
                                          : ACL_TCP_TIMEOUT_NS;
        if (okopy_elapsed(now, conn->last_ns) > timeout) {
            bpf_map_delete_elem(&conns, key);
            conn = NULL;
        }
    }
    if (conn && p->proto == IPPROTO_TCP
        && (p->tcp_flags & (OKOPY_TCP_SYN | OKOPY_TCP_ACK | OKOPY_TCP_RST))
           == OKOPY_TCP_SYN
        && (conn->flags & ACL_CONN_CLOSED)) {
        /* A new SYN on a closed connection opens it again. */
        bpf_map_delete_elem(&conns, key);
        conn = NULL;
    }

    if (!conn) {
        if (p->proto == IPPROTO_TCP) {
            __u8 f = p->tcp_flags;

            if (f & (OKOPY_TCP_RST | OKOPY_TCP_FIN))
                return ACL_ST_INVALID;
            if ((f & (OKOPY_TCP_SYN | OKOPY_TCP_ACK)) == 0
                || (f & (OKOPY_TCP_SYN | OKOPY_TCP_ACK))
                   == (OKOPY_TCP_SYN | OKOPY_TCP_ACK))
                return ACL_ST_INVALID;
        } else if (p->proto == IPPROTO_ICMP && reply) {
            return ACL_ST_INVALID;
        }
        *open = 1;
        return ACL_ST_NEW;
    }

    int is_reply = p->proto == IPPROTO_ICMP ? reply : *from != conn->origin;

    conn->last_ns = now;
    conn->packets++;
    if (p->proto == IPPROTO_TCP) {
        if (p->tcp_flags & OKOPY_TCP_RST)
            conn->flags |= ACL_CONN_CLOSED;
        if (p->tcp_flags & OKOPY_TCP_FIN) {
            conn->flags |= *from == FLOW_FROM_A ? ACL_CONN_FIN_A
                                                : ACL_CONN_FIN_B;
            if ((conn->flags & (ACL_CONN_FIN_A | ACL_CONN_FIN_B))
                == (ACL_CONN_FIN_A | ACL_CONN_FIN_B))
                conn->flags |= ACL_CONN_CLOSED;
        }
    }
    if (is_reply) {
        conn->flags |= ACL_CONN_SEEN_REPLY;
        return ACL_ST_ESTABLISHED;
    }
    return conn->flags & ACL_CONN_SEEN_REPLY ? ACL_ST_ESTABLISHED
                                             : ACL_ST_NEW;
}

SEC("xdp")
int acl(struct xdp_md *ctx)
{
    const struct acl_bits *v[ACL_F_N];
    __u64 cand[ACL_SUMMARY];
    struct acl_pkt p = { 0 };
    struct acl_key_addr kaddr;
    struct acl_key32 k32;
    struct acl_key16 k16;
    struct acl_key8 k8;
    __u32 cls;
    const struct acl_config *cfg;
    const struct acl_any *anyv;
    struct acl_rule *rule;
    struct flow4_key ckey;
    int from = 0, open = 0;
    __u32 zero = 0, idx, st;
    __u32 index = ACL_MAX_RULES;
    __u64 now = 0;

    if (parse_packet(ctx, &p) < 0)
        return XDP_PASS;

    anyv = bpf_map_lookup_elem(&any, &zero);
    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!anyv || !cfg)
        return XDP_ABORTED;

    /* Every trie holds its root (prefix length 0), so a lookup cannot
     * miss once okopy/acl/ wrote the maps: a miss gives a class past the
     * vectors table, an ACL not yet written, which aborts rather than
     * guess. */
    k32.prefixlen = 32;
    k32.value = bpf_htonl(ctx->ingress_ifindex);
    cls = trie_class(&in_port, &k32);
    v[ACL_F_IN_PORT] = bpf_map_lookup_elem(&vectors, &cls);
    kaddr.prefixlen = 32;
    kaddr.addr = p.saddr;
    cls = trie_class(&src, &kaddr);
    v[ACL_F_SRC] = bpf_map_lookup_elem(&vectors, &cls);
    kaddr.addr = p.daddr;
    cls = trie_class(&dst, &kaddr);
    v[ACL_F_DST] = bpf_map_lookup_elem(&vectors, &cls);
    idx = p.proto;
    v[ACL_F_PROTO] = bpf_map_lookup_elem(&proto, &idx);
    /* A packet without ports (or flags) matches no rule that looks at
     * them, negated or not (as in iptables): class 0, the empty vector. */
    k16.prefixlen = 16;
    k16.value = bpf_htons(p.sport);
    cls = p.has_l4 ? trie_class(&sport, &k16) : ACL_NO_RULES;
    v[ACL_F_SPORT] = bpf_map_lookup_elem(&vectors, &cls);
    k16.value = bpf_htons(p.dport);
    cls = p.has_l4 ? trie_class(&dport, &k16) : ACL_NO_RULES;
    v[ACL_F_DPORT] = bpf_map_lookup_elem(&vectors, &cls);
    k8.prefixlen = 8;
    k8.value = flags_key(p.tcp_flags);
    cls = p.has_l4 && p.proto == IPPROTO_TCP ? trie_class(&flags, &k8)
                                              : ACL_NO_RULES;
    v[ACL_F_FLAGS] = bpf_map_lookup_elem(&vectors, &cls);
    if (cfg->track) {
        now = bpf_ktime_get_ns();
        st = conn_state(&p, cfg, now, &ckey, &from, &open);
    } else {
        st = ACL_ST_UNTRACKED;
    }
    v[ACL_F_STATE] = bpf_map_lookup_elem(&state, &st);
    if (!v[ACL_F_IN_PORT] || !v[ACL_F_SRC] || !v[ACL_F_DST]
        || !v[ACL_F_PROTO] || !v[ACL_F_SPORT] || !v[ACL_F_DPORT]
        || !v[ACL_F_FLAGS] || !v[ACL_F_STATE])
        return XDP_ABORTED;

    /* The words where every field allows some rule; in each, in order,
     * the rules all fields allow.  A word whose AND is empty is dropped
     * from the candidates, and the next one tried. */
#pragma unroll
    for (int i = 0; i < ACL_SUMMARY; i++) {
        __u64 c = ~0ULL;

#pragma unroll
        for (int f = 0; f < ACL_F_N; f++)
            c &= v[f]->summary[i] | anyv->field[f].summary[i];
        cand[i] = c;
    }
    /* A loop the verifier bounds (ACL_WORDS turns at most), not unrolled:
     * unrolled, its branches multiply the verifier's paths. */
#pragma clang loop unroll(disable)
    for (int n = 0; n < ACL_WORDS; n++) {
        __u64 w = 0, alive = ~0ULL;
        __u64 m = ~0ULL;

        /* The lowest candidate word, without branches (lowest_bit(0) is
         * 64): 'alive' stays all ones while the summary words seen were
         * empty; the word chosen loses its bit. */
#pragma unroll
        for (int i = 0; i < ACL_SUMMARY; i++) {
            __u64 lb = lowest_bit(cand[i]);
            __u64 here = alive & ((lb >> 6) - 1);

            w += lb & alive;
            cand[i] &= ~((cand[i] & -cand[i]) & here);
            alive &= -(lb >> 6);
        }
        if (w >= ACL_WORDS)
            break;
#pragma unroll
        for (int f = 0; f < ACL_F_N; f++)
            m &= v[f]->w[w] | anyv->field[f].w[w];
        if (m) {
            index = w * 64 + lowest_bit(m);
            break;
        }
    }

    if (index > ACL_MAX_RULES)
        return XDP_ABORTED;
    rule = bpf_map_lookup_elem(&rules, &index);
    if (!rule)
        return XDP_ABORTED;
    __sync_fetch_and_add(&rule->packets, 1);
    __sync_fetch_and_add(&rule->bytes,
                         (__u64)(ctx->data_end - ctx->data));

    if (open && rule->verdict == XDP_PASS) {
        struct acl_conn c = {
            .origin = from,
            .last_ns = now,
            .packets = 1,
        };

        bpf_map_update_elem(&conns, &ckey, &c, BPF_ANY);
    }
    return rule->verdict;
}

char LICENSE[] SEC("license") = "GPL";
