/* dns_guard.c -- DNS amplification guard.
 *
 * In a reflection attack, queries with the victim's spoofed address make
 * open resolvers send it large responses it never asked for.  This filter
 * remembers the DNS queries it sees leave (UDP to port 53 with the QR bit
 * clear: client, server, time) and drops large UDP datagrams from port 53
 * unless their destination queried that server within the last
 * 'window_ns'.  Small responses always pass: they amplify little, and
 * dropping them would break clients whose query took another path.
 *
 * Size is the UDP length field, not the bytes present, so the first
 * fragment of a fragmented response is judged by the size of the whole;
 * later fragments carry no UDP header and pass (they cannot be
 * reassembled without the first).
 *
 * Maps:
 *   config   array[1] of struct dg_config: max_unsolicited (largest UDP
 *            length let through unsolicited) and window_ns; 0 selects the
 *            default.
 *   queries  LRU hash struct dg_pair (client, server) -> struct dg_query:
 *            time of the latest query and queries seen.
 *   victims  LRU hash okopy_ipv4_t -> struct dg_victim: unsolicited large
 *            responses dropped per destination, and their bytes.
 * Verdicts: XDP_DROP for a large unsolicited DNS response, XDP_PASS for
 *   everything else (IPv6 and truncated packets included). */

#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

#define DNS_PORT 53

/* Defaults while the config map holds zeros: 512 bytes of DNS message is
 * the classic UDP limit (RFC 1035), so only EDNS-sized answers need a
 * query; a query permits answers for 5 s, longer than resolvers retry. */
#ifndef DG_DEFAULT_MAX_UNSOLICITED
#define DG_DEFAULT_MAX_UNSOLICITED (512 + 8)
#endif
#ifndef DG_DEFAULT_WINDOW_NS
#define DG_DEFAULT_WINDOW_NS (5ULL * 1000000000ULL)
#endif
/* (client, server) pairs remembered; the least recent are forgotten. */
#ifndef DG_MAX_QUERIES
#define DG_MAX_QUERIES 65536
#endif
#ifndef DG_MAX_VICTIMS
#define DG_MAX_VICTIMS 4096
#endif

struct dg_config {
    __u32 max_unsolicited;  /* UDP length (header included), bytes */
    __u32 pad;
    __u64 window_ns;
};

struct dg_pair {
    okopy_ipv4_t client;
    okopy_ipv4_t server;
};

struct dg_query {
    __u64 last_ns;
    __u64 queries;
};

struct dg_victim {
    __u64 dropped;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct dg_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, DG_MAX_QUERIES);
    __type(key, struct dg_pair);
    __type(value, struct dg_query);
} queries SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, DG_MAX_VICTIMS);
    __type(key, okopy_ipv4_t);
    __type(value, struct dg_victim);
} victims SEC(".maps");

/* Remembers that 'client' asked 'server' at 'now'. */
static __always_inline void
note_query(__be32 client, __be32 server, __u64 now)
{
    struct dg_pair pair = { .client = client, .server = server };
    struct dg_query *q, fresh = { .last_ns = now, .queries = 1 };

    q = bpf_map_lookup_elem(&queries, &pair);
    if (!q) {
        bpf_map_update_elem(&queries, &pair, &fresh, BPF_ANY);
        return;
    }
    q->last_ns = now;
    __sync_fetch_and_add(&q->queries, 1);
}

static __always_inline int
drop_unsolicited(__be32 victim, __u32 len)
{
    struct dg_victim *v, fresh = { .dropped = 1, .bytes = len };

    v = bpf_map_lookup_elem(&victims, &victim);
    if (!v) {
        bpf_map_update_elem(&victims, &victim, &fresh, BPF_ANY);
    } else {
        __sync_fetch_and_add(&v->dropped, 1);
        __sync_fetch_and_add(&v->bytes, len);
    }
    return XDP_DROP;
}

SEC("xdp")
int dns_guard(struct xdp_md *ctx)
{
    __u32 max_len = DG_DEFAULT_MAX_UNSOLICITED, zero = 0, len;
    __u64 window = DG_DEFAULT_WINDOW_NS, now;
    struct dg_pair pair = {};
    struct dg_config *cfg;
    struct dg_query *q;
    struct dnshdr *dns;
    struct cursor c;
    struct iphdr *iph;
    struct udphdr *uh;
    int flags;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP) ||
        parse_ipv4(&c, &iph) != IPPROTO_UDP || ipv4_is_later_fragment(iph))
        return XDP_PASS;
    if (parse_udp(&c, &uh) < 0)
        return XDP_PASS;
    now = bpf_ktime_get_ns();

    if (uh->dest == bpf_htons(DNS_PORT)) {
        flags = parse_dns(&c, &dns);
        if (flags >= 0 && !(flags & OKOPY_DNS_QR))
            note_query(iph->saddr, iph->daddr, now);
        return XDP_PASS;
    }
    if (uh->source != bpf_htons(DNS_PORT))
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (cfg) {
        if (cfg->max_unsolicited)
            max_len = cfg->max_unsolicited;
        if (cfg->window_ns)
            window = cfg->window_ns;
    }
    len = bpf_ntohs(uh->len);
    if (len <= max_len)
        return XDP_PASS;
    pair.client = iph->daddr;
    pair.server = iph->saddr;
    q = bpf_map_lookup_elem(&queries, &pair);
    if (q && okopy_elapsed(now, q->last_ns) <= window)
        return XDP_PASS;
    return drop_unsolicited(iph->daddr, len);
}

char LICENSE[] SEC("license") = "GPL";
