/* dapper.c -- TCP performance diagnosis from the network, after Dapper.
 *
 * Watches IPv4 TCP connections passing the switch and keeps, per flow and
 * per direction, what a diagnosis needs to tell a slow sender from a slow
 * network or a slow receiver:
 *   - RTT: the handshake (client's SYN to its ACK of the SYN-ACK), and
 *     data/ACK samples: one segment per direction is timed at a time, from
 *     when it passes to when an ACK covering it passes the other way, so a
 *     sample is the RTT from this switch to the receiver and back.  A
 *     retransmission cancels the timing (Karn's rule).
 *   - flight size: snd_nxt - snd_una, the bytes sent and not yet acked.
 *   - retransmissions: segments whose data starts before snd_nxt.
 * One LRU entry per connection, both directions in it.  The filter only
 * measures: every packet passes.  Updates are plain stores: two CPUs
 * handling both directions of a flow at once may lose a sample, which a
 * monitor can afford.
 *
 * Maps:
 *   flows  LRU hash struct flow4_key -> struct dp_flow: handshake times
 *          and RTT, and a struct dp_dir per direction ([0]: sent by
 *          endpoint a of the key, [1]: by b).
 * Verdict: XDP_PASS, always. */

#include <okopy/flow.h>
#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

/* Connections tracked; the least recently active are forgotten. */
#ifndef DP_MAX_FLOWS
#define DP_MAX_FLOWS 65536
#endif

enum dp_state {
    DP_MIDSTREAM = 0,   /* first seen after the handshake */
    DP_SYN_SEEN = 1,
    DP_SYNACK_SEEN = 2,
    DP_ESTABLISHED = 3, /* handshake seen completely: handshake_rtt_ns */
};

struct dp_dir {
    __u32 snd_nxt;      /* highest sequence sent, + 1 */
    __u32 snd_una;      /* highest sequence acked by the peer */
    __u32 flight;       /* snd_nxt - snd_una after the latest packet */
    __u32 retrans;      /* retransmitted segments */
    __u32 timing;       /* 1: the segment ending at sample_seq is timed */
    __u32 sample_seq;
    __u64 sample_ns;
    __u64 rtt_ns;       /* latest sample */
    __u64 srtt_ns;      /* smoothed: 7/8 old + 1/8 new (RFC 6298) */
    __u64 min_rtt_ns;
    __u32 rtt_samples;
    __u32 pad;
    __u64 bytes;        /* payload bytes sent */
    __u64 packets;
};

struct dp_flow {
    struct dp_dir dir[2];
    __u64 syn_ns;
    __u64 synack_ns;
    __u64 handshake_rtt_ns;
    enum dp_state state;
    __u32 client;       /* FLOW_FROM_A / FLOW_FROM_B: who sent the SYN */
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, DP_MAX_FLOWS);
    __type(key, struct flow4_key);
    __type(value, struct dp_flow);
} flows SEC(".maps");

static __always_inline void
add_sample(struct dp_dir *d, __u64 rtt)
{
    d->rtt_ns = rtt;
    d->srtt_ns = d->rtt_samples ? d->srtt_ns - d->srtt_ns / 8 + rtt / 8 : rtt;
    if (!d->rtt_samples || rtt < d->min_rtt_ns)
        d->min_rtt_ns = rtt;
    d->rtt_samples++;
}

/* Sender side: 'd' sent [seq, end) ('end' counts SYN and FIN). */
static __always_inline void
on_send(struct dp_dir *d, __u32 seq, __u32 end, __u32 len, __u64 now)
{
    int first = d->packets == 0, resent = 0;

    d->packets++;
    d->bytes += len;
    if (first) {
        d->snd_una = seq;
        d->snd_nxt = end;
    } else if (end != seq && seq_before(seq, d->snd_nxt)) {
        resent = 1;
        d->retrans++;
        d->timing = 0;          /* Karn: an ambiguous sample */
    }
    if (seq_after(end, d->snd_nxt))
        d->snd_nxt = end;
    if (end != seq && !resent && !d->timing && end == d->snd_nxt) {
        d->timing = 1;
        d->sample_seq = end;
        d->sample_ns = now;
    }
    d->flight = d->snd_nxt - d->snd_una;
}

/* Receiver side: the peer of 'o' acked everything before 'ack'. */
static __always_inline void
on_ack(struct dp_dir *o, __u32 ack, __u64 now)
{
    if (!o->packets)
        return;                 /* nothing seen of that direction */
    if (seq_after(ack, o->snd_una) && !seq_after(ack, o->snd_nxt))
        o->snd_una = ack;
    if (o->timing && !seq_before(ack, o->sample_seq)) {
        o->timing = 0;
        add_sample(o, okopy_elapsed(now, o->sample_ns));
    }
    o->flight = o->snd_nxt - o->snd_una;
}

SEC("xdp")
int dapper(struct xdp_md *ctx)
{
    struct dp_flow *f, fresh = {};
    struct dp_dir *d, *o;
    struct flow4_key key;
    struct cursor c;
    struct iphdr *iph;
    struct tcphdr *th;
    __u32 seq, end, len;
    int from, hdrs, tot;
    __u64 now;
    __u8 flags;

    cursor_init(&c, ctx);
    hdrs = parse_ipv4_tcp(&c, &iph, &th);
    if (hdrs < 0)
        return XDP_PASS;

    flags = tcp_flags(th);
    hdrs += iph->ihl * 4;
    tot = bpf_ntohs(iph->tot_len);
    len = tot > hdrs ? tot - hdrs : 0;
    seq = bpf_ntohl(th->seq);
    end = seq + len + !!(flags & OKOPY_TCP_SYN) + !!(flags & OKOPY_TCP_FIN);
    from = flow4_key_init(&key, iph->saddr, iph->daddr, th->source, th->dest,
                          IPPROTO_TCP);
    now = bpf_ktime_get_ns();

    f = bpf_map_lookup_elem(&flows, &key);
    if (!f) {
        bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
        f = bpf_map_lookup_elem(&flows, &key);
        if (!f)
            return XDP_PASS;
    }
    if (from == FLOW_FROM_B) {
        d = &f->dir[1];
        o = &f->dir[0];
    } else {
        d = &f->dir[0];
        o = &f->dir[1];
    }

    if ((flags & (OKOPY_TCP_SYN | OKOPY_TCP_ACK)) == OKOPY_TCP_SYN) {
        if (f->state != DP_SYN_SEEN)        /* a new connection */
            __builtin_memset(f, 0, sizeof *f);
        f->state = DP_SYN_SEEN;
        f->syn_ns = now;
        f->client = from;
    } else if ((flags & OKOPY_TCP_SYN) && f->state == DP_SYN_SEEN &&
               from != f->client) {
        f->state = DP_SYNACK_SEEN;
        f->synack_ns = now;
    } else if (!(flags & OKOPY_TCP_SYN) && (flags & OKOPY_TCP_ACK) &&
               f->state == DP_SYNACK_SEEN && from == f->client) {
        f->state = DP_ESTABLISHED;
        f->handshake_rtt_ns = okopy_elapsed(now, f->syn_ns);
    }

    on_send(d, seq, end, len, now);
    if (flags & OKOPY_TCP_ACK)
        on_ack(o, bpf_ntohl(th->ack_seq), now);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
