/* port_knock.c -- port knocking: a secret sequence of ports opens another.
 *
 * The protected port (TCP and UDP) is closed to every IPv4 source until
 * that source "knocks": sends, in order, a TCP SYN or a UDP datagram to
 * each port of the configured sequence, at most 'step_timeout_ns' apart.
 * The last right knock opens the protected port for that source for
 * 'open_ns'.  A knock on a port of the sequence out of order starts the
 * source over (at step 1 if it was the first port, else step 0); a pause
 * longer than the step timeout does too.  Knocks are dropped, so the
 * sequence ports look closed.  Traffic to any other port is untouched.
 *
 * Maps:
 *   config    array[1] of struct pk_config: protected_port, the sequence
 *             (ports in order, up to PK_MAX_STEPS, ended by 0), open_ns
 *             and step_timeout_ns (0: defaults).  With no protected port
 *             configured the filter passes everything.
 *   knockers  LRU hash okopy_ipv4_t -> struct pk_state: the next step
 *             expected, time of the last right knock, and until when the
 *             protected port is open to the source.
 * Verdicts: XDP_DROP for knocks and for closed access to the protected
 *   port; XDP_PASS otherwise (non-IPv4, other ports, malformed L4). */

#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

/* Longest knock sequence. */
#ifndef PK_MAX_STEPS
#define PK_MAX_STEPS 8
#endif
/* Defaults while the config map holds zeros: the port stays open 30 s
 * after the last knock; knocks may be 5 s apart. */
#ifndef PK_DEFAULT_OPEN_NS
#define PK_DEFAULT_OPEN_NS (30ULL * 1000000000ULL)
#endif
#ifndef PK_DEFAULT_STEP_TIMEOUT_NS
#define PK_DEFAULT_STEP_TIMEOUT_NS (5ULL * 1000000000ULL)
#endif
/* Sources knocking at once; the least recent are forgotten. */
#ifndef PK_MAX_KNOCKERS
#define PK_MAX_KNOCKERS 4096
#endif

struct pk_config {
    __u64 open_ns;
    __u64 step_timeout_ns;
    okopy_be16 protected_port;
    okopy_be16 sequence[PK_MAX_STEPS];
    __u16 pad[3];
};

struct pk_state {
    __u32 step;             /* index in the sequence of the next knock */
    __u32 pad;
    __u64 last_knock_ns;
    __u64 open_until_ns;    /* 0: never opened */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pk_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, PK_MAX_KNOCKERS);
    __type(key, okopy_ipv4_t);
    __type(value, struct pk_state);
} knockers SEC(".maps");

/* Advances the knock state of 'saddr' for a knock on 'dport'. */
static __always_inline int
knock(const struct pk_config *cfg, struct pk_state *st, okopy_ipv4_t saddr,
      __be16 dport, __u64 now)
{
    __u64 open_ns = cfg->open_ns ? cfg->open_ns : PK_DEFAULT_OPEN_NS;
    __u64 step_timeout = cfg->step_timeout_ns ? cfg->step_timeout_ns
                                              : PK_DEFAULT_STEP_TIMEOUT_NS;
    __u64 open_until = 0;
    __u32 step = 0, n = PK_MAX_STEPS;
    __be16 expected = 0;
    int in_sequence = 0;

    if (st && st->step && okopy_elapsed(now, st->last_knock_ns) <= step_timeout)
        step = st->step;
#pragma unroll
    for (__u32 i = 0; i < PK_MAX_STEPS; i++) {
        if (!cfg->sequence[i]) {
            n = i;
            break;
        }
        if (cfg->sequence[i] == dport)
            in_sequence = 1;
        if (i == step)
            expected = cfg->sequence[i];
    }
    if (!in_sequence)
        return XDP_PASS;        /* not a knock */

    if (dport == expected)
        step++;
    else
        step = dport == cfg->sequence[0] ? 1 : 0;
    if (step >= n) {
        open_until = now + open_ns;
        step = 0;
    }
    if (st) {
        st->step = step;
        st->last_knock_ns = now;
        if (open_until)
            st->open_until_ns = open_until;
    } else if (step || open_until) {
        struct pk_state fresh = {
            .step = step, .last_knock_ns = now, .open_until_ns = open_until,
        };

        bpf_map_update_elem(&knockers, &saddr, &fresh, BPF_ANY);
    }
    return XDP_DROP;
}

SEC("xdp")
int port_knock(struct xdp_md *ctx)
{
    struct pk_config *cfg;
    struct pk_state *st;
    struct cursor c;
    struct iphdr *iph;
    okopy_ipv4_t saddr;
    __be16 dport;
    __u32 zero = 0;
    __u64 now;
    int proto, is_knock;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg || !cfg->protected_port)
        return XDP_PASS;
    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    proto = parse_ipv4(&c, &iph);
    if (proto < 0 || ipv4_is_later_fragment(iph))
        return XDP_PASS;
    if (proto == IPPROTO_TCP) {
        struct tcphdr *th;

        if (parse_tcp(&c, &th) < 0)
            return XDP_PASS;
        dport = th->dest;
        is_knock = (tcp_flags(th) & (OKOPY_TCP_SYN | OKOPY_TCP_ACK)) ==
                   OKOPY_TCP_SYN;
    } else if (proto == IPPROTO_UDP) {
        struct udphdr *uh;

        if (parse_udp(&c, &uh) < 0)
            return XDP_PASS;
        dport = uh->dest;
        is_knock = 1;
    } else {
        return XDP_PASS;
    }

    now = bpf_ktime_get_ns();
    saddr = iph->saddr;
    st = bpf_map_lookup_elem(&knockers, &saddr);
    if (dport == cfg->protected_port)
        return st && now < st->open_until_ns ? XDP_PASS : XDP_DROP;
    if (!is_knock)
        return XDP_PASS;
    return knock(cfg, st, saddr, dport, now);
}

char LICENSE[] SEC("license") = "GPL";
