/* identity_policy.c -- identity-based ingress policy, as Cilium enforces it.
 *
 * Addresses are mapped to numeric security identities (a workload's
 * labels, allocated by the controller) and policy is written between
 * identities, so it does not change when workloads move or scale.  For an
 * IPv4 packet the filter looks up the identities of both addresses (longest
 * prefix; addresses in no prefix get the "world" identity) and then the
 * most specific policy entry, in this order:
 *
 *   (src, dst, dport, proto)  port rule
 *   (src, dst, 0, proto)      any port of a protocol
 *   (src, dst, 0, 0)          L3 rule: any traffic
 *   the same three with src = 0, meaning any source identity.
 *
 * An entry allows or (allow = 0) denies.  Without an entry, traffic to an
 * enforced identity (in 'enforced', or every identity when config says
 * default_deny) is dropped and other traffic passes: like Cilium, an
 * endpoint is default-allow until some policy selects it.  Ports are
 * those of TCP and UDP; for other protocols, truncated L4 headers and
 * non-first fragments dport is 0, so only L3 and any-port rules apply.
 *
 * Maps:
 *   identities  LPM trie struct idp_prefix -> __u32 identity.
 *   policy      hash struct idp_policy_key -> struct idp_rule: allow and
 *               a packet counter.
 *   enforced    hash __u32 identity -> __u32: nonzero makes traffic to the
 *               identity default-deny.
 *   config      array[1] of struct idp_config: default_deny (all
 *               identities enforced), world_identity (0: IDP_WORLD).
 *   counters    array[1] of struct idp_counters: packets by outcome.
 * Verdicts: XDP_DROP when denied, XDP_PASS otherwise (non-IPv4 too). */

#include <okopy/parse.h>
#include <okopy/types.h>

/* Identity of addresses in no prefix; Cilium's reserved "world" is 2. */
#ifndef IDP_WORLD
#define IDP_WORLD 2
#endif
#ifndef IDP_MAX_PREFIXES
#define IDP_MAX_PREFIXES 65536
#endif
#ifndef IDP_MAX_RULES
#define IDP_MAX_RULES 65536
#endif
#ifndef IDP_MAX_ENFORCED
#define IDP_MAX_ENFORCED 4096
#endif

struct idp_prefix {
    __u32 prefixlen;
    okopy_ipv4_t addr;
};

struct idp_policy_key {
    __u32 src_identity;     /* 0: any source */
    __u32 dst_identity;
    okopy_be16 dport;       /* 0: any port */
    __u8 proto;             /* 0: any protocol (then dport is 0 too) */
    __u8 pad;
};

struct idp_rule {
    __u32 allow;            /* 1: allow, 0: deny */
    __u32 pad;
    __u64 packets;
};

struct idp_config {
    __u32 default_deny;
    __u32 world_identity;
};

struct idp_counters {
    __u64 allowed;          /* by a rule */
    __u64 denied;           /* by a rule */
    __u64 default_denied;   /* no rule, destination enforced */
    __u64 unenforced;       /* no rule, destination not enforced */
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, IDP_MAX_PREFIXES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct idp_prefix);
    __type(value, __u32);
} identities SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, IDP_MAX_RULES);
    __type(key, struct idp_policy_key);
    __type(value, struct idp_rule);
} policy SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, IDP_MAX_ENFORCED);
    __type(key, __u32);
    __type(value, __u32);
} enforced SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct idp_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct idp_counters);
} counters SEC(".maps");

static __always_inline __u32
identity_of(__be32 addr, __u32 world)
{
    struct idp_prefix key = { .prefixlen = 32, .addr = addr };
    __u32 *id = bpf_map_lookup_elem(&identities, &key);

    return id ? *id : world;
}

/* The most specific rule for the packet, or NULL. */
static __always_inline struct idp_rule *
find_rule(__u32 src, __u32 dst, __be16 dport, __u8 proto)
{
    struct idp_policy_key key = { .dst_identity = dst };
    struct idp_rule *rule;

#pragma unroll
    for (int i = 0; i < 6; i++) {
        key.src_identity = i < 3 ? src : 0;
        key.dport = i % 3 == 0 ? dport : 0;
        key.proto = i % 3 == 2 ? 0 : proto;
        if (i % 3 == 0 && !dport)
            continue;       /* same as the any-port lookup */
        rule = bpf_map_lookup_elem(&policy, &key);
        if (rule)
            return rule;
    }
    return NULL;
}

SEC("xdp")
int identity_policy(struct xdp_md *ctx)
{
    __u32 world = IDP_WORLD, deny_all = 0, zero = 0, src, dst;
    struct idp_counters *cnt;
    struct idp_config *cfg;
    __u32 *enforce;
    struct idp_rule *rule;
    struct cursor c;
    struct iphdr *iph;
    __be16 dport = 0;
    int proto;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    proto = parse_ipv4(&c, &iph);
    if (proto < 0)
        return XDP_PASS;
    if (!ipv4_is_later_fragment(iph)) {
        struct tcphdr *th;
        struct udphdr *uh;

        if (proto == IPPROTO_TCP && parse_tcp(&c, &th) >= 0)
            dport = th->dest;
        else if (proto == IPPROTO_UDP && parse_udp(&c, &uh) >= 0)
            dport = uh->dest;
    }

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (cfg) {
        deny_all = cfg->default_deny;
        if (cfg->world_identity)
            world = cfg->world_identity;
    }
    cnt = bpf_map_lookup_elem(&counters, &zero);
    src = identity_of(iph->saddr, world);
    dst = identity_of(iph->daddr, world);

    rule = find_rule(src, dst, dport, proto);
    if (rule) {
        __sync_fetch_and_add(&rule->packets, 1);
        if (rule->allow) {
            if (cnt)
                __sync_fetch_and_add(&cnt->allowed, 1);
            return XDP_PASS;
        }
        if (cnt)
            __sync_fetch_and_add(&cnt->denied, 1);
        return XDP_DROP;
    }
    enforce = bpf_map_lookup_elem(&enforced, &dst);
    if (deny_all || (enforce && *enforce)) {
        if (cnt)
            __sync_fetch_and_add(&cnt->default_denied, 1);
        return XDP_DROP;
    }
    if (cnt)
        __sync_fetch_and_add(&cnt->unenforced, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
