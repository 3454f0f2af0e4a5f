/* okopy/acl.h -- what bpf/acl.c (IPv4) and bpf/acl6.c (IPv6) share: the
 * rule vectors, the maps of every field but the addresses, the search for
 * the first matching rule, and connection tracking over a flow key of
 * either family.
 *
 * A program including this defines its address tries ('src', 'dst' for
 * IPv4; 'src6', 'dst6' for IPv6) and its connection table 'conns', parses
 * a packet into a struct acl_l4 and a flow key of its family, and calls
 * acl_conn_state() and acl_decide().  bpf/acl.c's opening comment says
 * what the fields, the maps and the verdicts are.
 *
 * CONTRACT with okopy/acl/ (the rule compiler): the field numbers, the
 * map names and value layouts, ACL_MAX_* and the verdicts; the compiler
 * writes the maps of both programs the same way. */

#ifndef OKOPY_ACL_H
#define OKOPY_ACL_H

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
    __u32 live;         /* the entry of 'live' in force, 0 or 1 */
    __u64 tcp_timeout_ns;
    __u64 other_timeout_ns;
};

struct acl_key32 {
    __u32 prefixlen;
    okopy_be32 value;
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
ACL_LPM(sport, struct acl_key16);
ACL_LPM(dport, struct acl_key16);
ACL_ARRAY(proto, 256, struct acl_bits);
ACL_LPM(flags, struct acl_key8);
ACL_ARRAY(vectors, ACL_MAX_CLASSES, struct acl_bits);
ACL_ARRAY(state, ACL_ST_N, struct acl_bits);
ACL_ARRAY(any, 1, struct acl_any);
ACL_ARRAY(rules, ACL_MAX_RULES + 2, struct acl_rule);
ACL_ARRAY(live, 2, struct acl_bits);
ACL_ARRAY(config, 1, struct acl_config);

/* What an ICMP (or ICMPv6) message is to connection tracking. */
enum acl_icmp {
    ACL_ICMP_REQUEST = 1,       /* a query that can open a connection */
    ACL_ICMP_REPLY,             /* the answer to one */
    ACL_ICMP_ERROR,             /* about another packet, which it quotes */
    ACL_ICMP_UNTRACKED,         /* IPv6 neighbour discovery and MLD */
    ACL_ICMP_OTHER,             /* no tuple conntrack can invert: invalid */
};

/* The transport of a packet of either family, as the parser found it. */
struct acl_l4 {
    __u16 sport, dport;         /* host order; ICMP: the type and the code */
    __u8 proto;                 /* IPv4 protocol, IPv6 upper-layer header */
    __u8 tcp_flags;
    __u8 has_l4;                /* ports (and TCP flags) are known */
    __u8 is_icmp;               /* proto is the family's ICMP */
    __u8 icmp;                  /* enum acl_icmp, when has_l4 */
    __u8 icmp_query;            /* the request type of a query or reply */
    __u8 inner_ok;              /* an ICMP error's quoted header parsed */
    __u8 pad;
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

/* Reads the transport header at 'c' of a packet whose transport protocol
 * is 'p->proto' and whose family's ICMP is 'p->is_icmp': TCP's and UDP's
 * ports (and TCP's flags), or an ICMP message's type and code (as the
 * ports) and id.  Returns the ICMP message, its first 8 bytes in the
 * packet, for the caller to classify (p->icmp), or NULL. */
static __always_inline __u8 *
acl_parse_l4(struct cursor *c, struct acl_l4 *p)
{
    if (p->proto == IPPROTO_TCP) {
        struct tcphdr *th;

        if (parse_tcp(c, &th) < 0)
            return NULL;
        p->sport = bpf_ntohs(th->source);
        p->dport = bpf_ntohs(th->dest);
        p->tcp_flags = tcp_flags(th);
        p->has_l4 = 1;
    } else if (p->proto == IPPROTO_UDP) {
        struct udphdr *uh = c->pos;

        if ((void *)(uh + 1) > c->end)
            return NULL;
        p->sport = bpf_ntohs(uh->source);
        p->dport = bpf_ntohs(uh->dest);
        p->has_l4 = 1;
    } else if (p->is_icmp) {
        __u8 *ic = c->pos;

        if ((void *)(ic + 8) > c->end)
            return NULL;
        p->sport = ic[0];
        p->dport = ic[1];
        p->icmp_id = (ic[4] << 8) | ic[5];
        p->has_l4 = 1;
        c->pos = ic + 8;
        return ic;
    }
    return NULL;
}

/* The ports of 'p''s connection key, network order: a TCP or UDP
 * packet's, an ICMP query's id and request type (both directions of a
 * query share them, so the caller keys them as they are, not ordered by
 * address), zero for other protocols. */
static __always_inline void
acl_conn_ports(const struct acl_l4 *p, __be16 *a, __be16 *b)
{
    *a = 0;
    *b = 0;
    if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
        *a = bpf_htons(p->sport);
        *b = bpf_htons(p->dport);
    } else if (p->is_icmp) {
        *a = bpf_htons(p->icmp_id);
        *b = bpf_htons(p->icmp_query);
    }
}

/* What connection tracking says of 'p', whose connection key in 'conns'
 * is 'key' ('from': which end of it sent 'p'); 'inner' is the key of the
 * connection an ICMP error quotes, or NULL.  Updates a known connection
 * (as conntrack does before the rules run); for a packet that would open
 * one, sets '*open' and returns ACL_ST_NEW, and acl_decide() records it
 * if the packet passes. */
static __always_inline int
acl_conn_state(const struct acl_l4 *p, const struct acl_config *cfg,
               __u64 now, void *conns, const void *key, int from,
               const void *inner, int *open)
{
    struct acl_conn *conn;
    __u64 timeout;
    int reply = 0;

    *open = 0;
    if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
        if (!p->has_l4)
            return ACL_ST_INVALID;
    } else if (p->is_icmp) {
        if (!p->has_l4)
            return ACL_ST_INVALID;
        if (p->icmp == ACL_ICMP_ERROR) {
            if (inner && bpf_map_lookup_elem(conns, inner))
                return ACL_ST_RELATED;
            return ACL_ST_INVALID;
        }
        if (p->icmp == ACL_ICMP_UNTRACKED)
            return ACL_ST_UNTRACKED;
        if (p->icmp == ACL_ICMP_OTHER)
            return ACL_ST_INVALID;
        reply = p->icmp == ACL_ICMP_REPLY;
    }

    if (p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
        return ACL_ST_INVALID;

    conn = bpf_map_lookup_elem(conns, key);
    if (conn) {
        timeout = cfg->other_timeout_ns ? cfg->other_timeout_ns
                                        : ACL_OTHER_TIMEOUT_NS;
        if (p->proto == IPPROTO_TCP && (conn->flags & ACL_CONN_SEEN_REPLY))
            timeout = cfg->tcp_timeout_ns ? cfg->tcp_timeout_ns
                                          : ACL_TCP_TIMEOUT_NS;
        if (okopy_elapsed(now, conn->last_ns) > timeout) {
            bpf_map_delete_elem(conns, key);
            conn = NULL;
        }
    }
    if (conn && p->proto == IPPROTO_TCP
        && (p->tcp_flags & (OKOPY_TCP_SYN | OKOPY_TCP_ACK | OKOPY_TCP_RST))
           == OKOPY_TCP_SYN
        && (conn->flags & ACL_CONN_CLOSED)) {
        /* A new SYN on a closed connection opens it again. */
        bpf_map_delete_elem(conns, key);
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
        } else if (reply) {
            return ACL_ST_INVALID;
        }
        *open = 1;
        return ACL_ST_NEW;
    }

    int is_reply = p->is_icmp ? reply : from != conn->origin;

    conn->last_ns = now;
    conn->packets++;
    if (p->proto == IPPROTO_TCP) {
        if (p->tcp_flags & OKOPY_TCP_RST)
            conn->flags |= ACL_CONN_CLOSED;
        if (p->tcp_flags & OKOPY_TCP_FIN) {
            conn->flags |= from == FLOW_FROM_A ? ACL_CONN_FIN_A
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

/* The verdict of the first rule in force ('cfg->live') that allows 'p',
 * whose addresses' vectors the caller looked up ('vsrc', 'vdst') and
 * whose connection state is 'st': the other fields are looked up here.
 * Counts the packet on the rule, and records the connection 'key' of
 * 'conns' if 'open' and the rule passes it. */
static __always_inline int
acl_decide(struct xdp_md *ctx, const struct acl_config *cfg,
           const struct acl_l4 *p,
           const struct acl_bits *vsrc, const struct acl_bits *vdst,
           __u32 st, void *conns, const void *key, int from, int open,
           __u64 now)
{
    const struct acl_bits *v[ACL_F_N];
    const struct acl_bits *in_force;
    __u64 cand[ACL_SUMMARY];
    struct acl_key32 k32;
    struct acl_key16 k16;
    struct acl_key8 k8;
    const struct acl_any *anyv;
    struct acl_rule *rule;
    __u32 zero = 0, cls, idx;
    __u32 slot = cfg->live & 1;
    __u32 index = ACL_MAX_RULES + slot;

    anyv = bpf_map_lookup_elem(&any, &zero);
    in_force = bpf_map_lookup_elem(&live, &slot);
    if (!anyv || !in_force)
        return XDP_ABORTED;

    /* Every trie holds its root (prefix length 0), so a lookup cannot
     * miss once okopy/acl/ wrote the maps: a miss gives a class past the
     * vectors table, an ACL not yet written, which aborts rather than
     * guess. */
    k32.prefixlen = 32;
    k32.value = bpf_htonl(ctx->ingress_ifindex);
    cls = trie_class(&in_port, &k32);
    v[ACL_F_IN_PORT] = bpf_map_lookup_elem(&vectors, &cls);
    v[ACL_F_SRC] = vsrc;
    v[ACL_F_DST] = vdst;
    idx = p->proto;
    v[ACL_F_PROTO] = bpf_map_lookup_elem(&proto, &idx);
    /* A packet without ports (or flags) matches no rule that looks at
     * them, negated or not (as in iptables): class 0, the empty vector. */
    k16.prefixlen = 16;
    k16.value = bpf_htons(p->sport);
    cls = p->has_l4 ? trie_class(&sport, &k16) : ACL_NO_RULES;
    v[ACL_F_SPORT] = bpf_map_lookup_elem(&vectors, &cls);
    k16.value = bpf_htons(p->dport);
    cls = p->has_l4 ? trie_class(&dport, &k16) : ACL_NO_RULES;
    v[ACL_F_DPORT] = bpf_map_lookup_elem(&vectors, &cls);
    k8.prefixlen = 8;
    k8.value = flags_key(p->tcp_flags);
    cls = p->has_l4 && p->proto == IPPROTO_TCP ? trie_class(&flags, &k8)
                                                : ACL_NO_RULES;
    v[ACL_F_FLAGS] = bpf_map_lookup_elem(&vectors, &cls);
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
        __u64 c = in_force->summary[i];

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
        __u64 m;

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
        m = in_force->w[w];
#pragma unroll
        for (int f = 0; f < ACL_F_N; f++)
            m &= v[f]->w[w] | anyv->field[f].w[w];
        if (m) {
            index = w * 64 + lowest_bit(m);
            break;
        }
    }

    if (index > ACL_MAX_RULES + 1)
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

        bpf_map_update_elem(conns, key, &c, BPF_ANY);
    }
    return rule->verdict;
}

#endif /* okopy/acl.h */
