/* tcp_firewall.c -- stateful TCP firewall (Oko's stateful example).
 *
 * Tracks IPv4 TCP connections in an LRU hash keyed by the normalised
 * 5-tuple (both directions share one entry).  Only connections opened
 * from the inside get in: a SYN arriving on an inside port creates an
 * entry; the reply SYN-ACK and the client's ACK complete the handshake;
 * after that both directions pass until a RST, FIN plus a short linger,
 * or an idle timeout (bpf_ktime_get_ns) ends the connection.  Everything
 * else TCP is dropped: SYNs from outside, segments of unknown or expired
 * connections, SYNs inside an established connection, malformed TCP and
 * non-first fragments (whose ports cannot be checked).
 *
 * "Inside" is the port a packet arrives on (ctx->ingress_ifindex, the
 * OpenFlow in_port), marked in the inside_ports array: in a switch the
 * port says where a packet comes from, whatever addresses it claims, and
 * the controller already knows which ports face the protected network.
 *
 * Maps:
 *   config        array[1] of struct fw_config: timeouts (0 selects the
 *                 compiled-in default) and whether non-TCP IP is dropped.
 *   inside_ports  array[FW_MAX_PORTS] of __u32, indexed by in_port:
 *                 nonzero marks a port facing the inside.  Ports beyond
 *                 the array are outside.
 *   conns         LRU hash struct flow4_key -> struct fw_conn: state,
 *                 which endpoint is the (inside) client, FINs seen, last
 *                 packet time and packet count.
 * Verdicts: XDP_PASS for handshakes from the inside and packets of known
 *   connections, for non-IP frames and (unless config says otherwise)
 *   non-TCP IP including IPv6, which this firewall does not track;
 *   XDP_DROP for all other TCP over IPv4 and for malformed IPv4. */

#include <okopy/flow.h>
#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

/* Connections tracked at once; the least recently used are evicted. */
#ifndef FW_MAX_CONNS
#define FW_MAX_CONNS 65536
#endif
/* in_ports that can be marked inside (OpenFlow ports are small numbers). */
#ifndef FW_MAX_PORTS
#define FW_MAX_PORTS 256
#endif
/* Default timeouts, used while the config map holds zeros: the handshake
 * must complete within FW_SYN_TIMEOUT_NS, an established connection may
 * idle FW_IDLE_TIMEOUT_NS, and one that saw a FIN lingers
 * FW_CLOSE_TIMEOUT_NS for the last ACKs and retransmissions. */
#ifndef FW_SYN_TIMEOUT_NS
#define FW_SYN_TIMEOUT_NS (30ULL * 1000000000ULL)
#endif
#ifndef FW_IDLE_TIMEOUT_NS
#define FW_IDLE_TIMEOUT_NS (3600ULL * 1000000000ULL)
#endif
#ifndef FW_CLOSE_TIMEOUT_NS
#define FW_CLOSE_TIMEOUT_NS (10ULL * 1000000000ULL)
#endif

enum fw_state {
    FW_SYN_SENT = 1,    /* client's SYN seen */
    FW_SYN_ACKED = 2,   /* server's SYN-ACK seen */
    FW_ESTABLISHED = 3, /* client's ACK of the SYN-ACK seen */
    FW_CLOSING = 4,     /* a FIN seen; ends after the close timeout */
};

/* fw_conn.fins bits. */
#define FW_FIN_CLIENT 1
#define FW_FIN_SERVER 2

struct fw_config {
    __u64 syn_timeout_ns;
    __u64 idle_timeout_ns;
    __u64 close_timeout_ns;
    __u32 drop_other;   /* 1: drop IP packets that are not IPv4 TCP */
    __u32 pad;
};

struct fw_conn {
    enum fw_state state;
    __u8 client;        /* FLOW_FROM_A / FLOW_FROM_B: who sent the SYN */
    __u8 fins;          /* FW_FIN_* */
    __u16 pad;
    __u64 last_seen_ns;
    __u64 packets;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct fw_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FW_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u32);
} inside_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, FW_MAX_CONNS);
    __type(key, struct flow4_key);
    __type(value, struct fw_conn);
} conns SEC(".maps");

static __always_inline __u64
pick(__u64 configured, __u64 fallback)
{
    return configured ? configured : fallback;
}

static __always_inline int
is_expired(const struct fw_conn *conn, const struct fw_config *cfg, __u64 now)
{
    __u64 limit;

    switch (conn->state) {
    case FW_ESTABLISHED:
        limit = pick(cfg ? cfg->idle_timeout_ns : 0, FW_IDLE_TIMEOUT_NS);
        break;
    case FW_CLOSING:
        limit = pick(cfg ? cfg->close_timeout_ns : 0, FW_CLOSE_TIMEOUT_NS);
        break;
    default:
        limit = pick(cfg ? cfg->syn_timeout_ns : 0, FW_SYN_TIMEOUT_NS);
        break;
    }
    return okopy_elapsed(now, conn->last_seen_ns) > limit;
}

static __always_inline int
is_inside(__u32 in_port)
{
    __u32 *mark = bpf_map_lookup_elem(&inside_ports, &in_port);

    return mark && *mark;
}

/* The verdict for a segment of the known connection 'conn', sent by its
 * client if 'from_client'; updates the state.  RST is handled before. */
static __always_inline int
track(struct fw_conn *conn, __u8 flags, int from_client)
{
    int syn = flags & OKOPY_TCP_SYN, ack = flags & OKOPY_TCP_ACK;

    switch (conn->state) {
    case FW_SYN_SENT:
        if (from_client && syn && !ack)
            return XDP_PASS;    /* SYN retransmitted */
        if (!from_client && syn && ack) {
            conn->state = FW_SYN_ACKED;
            return XDP_PASS;
        }
        return XDP_DROP;
    case FW_SYN_ACKED:
        if (syn) {              /* either side retransmitting */
            int resent = from_client ? !ack : !!ack;

            return resent ? XDP_PASS : XDP_DROP;
        }
        if (!from_client || !ack)
            return XDP_DROP;
        conn->state = FW_ESTABLISHED;
        break;
    default:
        if (syn)
            return XDP_DROP;
        break;
    }
    if (flags & OKOPY_TCP_FIN) {
        conn->fins |= from_client ? FW_FIN_CLIENT : FW_FIN_SERVER;
        conn->state = FW_CLOSING;
    }
    return XDP_PASS;
}

SEC("xdp")
int tcp_firewall(struct xdp_md *ctx)
{
    struct fw_conn *conn, fresh = {};
    struct fw_config *cfg;
    struct flow4_key key;
    struct cursor c;
    struct iphdr *iph;
    struct tcphdr *th;
    __u32 zero = 0;
    __u64 now;
    __u8 flags;
    int proto, from, verdict;

    cfg = bpf_map_lookup_elem(&config, &zero);
    cursor_init(&c, ctx);
    proto = parse_eth(&c, NULL);
    if (proto == bpf_htons(ETH_P_IPV6))
        return cfg && cfg->drop_other ? XDP_DROP : XDP_PASS;
    if (proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (parse_ipv4(&c, &iph) < 0)
        return XDP_DROP;
    if (iph->protocol != IPPROTO_TCP)
        return cfg && cfg->drop_other ? XDP_DROP : XDP_PASS;
    if (ipv4_is_later_fragment(iph) || parse_tcp(&c, &th) < 0)
        return XDP_DROP;

    flags = tcp_flags(th);
    from = flow4_key_init(&key, iph->saddr, iph->daddr, th->source, th->dest,
                          IPPROTO_TCP);
    now = bpf_ktime_get_ns();
    conn = bpf_map_lookup_elem(&conns, &key);
    if (conn && is_expired(conn, cfg, now)) {
        bpf_map_delete_elem(&conns, &key);
        conn = NULL;
    }
    if (!conn) {
        if ((flags & (OKOPY_TCP_SYN | OKOPY_TCP_ACK | OKOPY_TCP_RST |
                      OKOPY_TCP_FIN)) != OKOPY_TCP_SYN ||
            !is_inside(ctx->ingress_ifindex))
            return XDP_DROP;
        fresh.state = FW_SYN_SENT;
        fresh.client = from;
        fresh.last_seen_ns = now;
        fresh.packets = 1;
        bpf_map_update_elem(&conns, &key, &fresh, BPF_NOEXIST);
        return XDP_PASS;
    }
    if (flags & OKOPY_TCP_RST) {
        /* Either side may abort a connection it is part of. */
        bpf_map_delete_elem(&conns, &key);
        return XDP_PASS;
    }
    verdict = track(conn, flags, from == conn->client);
    if (verdict == XDP_PASS) {
        conn->last_seen_ns = now;
        __sync_fetch_and_add(&conn->packets, 1);
    }
    return verdict;
}

char LICENSE[] SEC("license") = "GPL";
