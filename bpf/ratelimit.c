/* ratelimit.c -- per-source rate limiter (Oko's token bucket example).
 *
 * Each IPv4 source may send 'rate' packets per second with bursts of
 * 'burst' packets; the excess is dropped.  Implemented as GCRA (the
 * "virtual scheduling" form of a token bucket): per source we keep the
 * theoretical arrival time 'tat' of the next conforming packet, which
 * needs no division per packet and cannot overflow.
 *
 * Maps:
 *   config    array[1] of struct rl_config: rate (packets/s) and burst;
 *             0 selects the compiled-in default.  Changing it takes
 *             effect immediately.
 *   sources   LRU hash okopy_ipv4_t -> struct rl_state: tat, passed and
 *             dropped counters per source (least recently seen sources
 *             are evicted when full).
 * Verdicts: XDP_DROP when a source exceeds its rate, XDP_PASS otherwise
 *   (non-IPv4 and truncated packets pass). */

#include <okopy/parse.h>
#include <okopy/types.h>

/* Defaults when the config map holds zeros. */
#ifndef RL_DEFAULT_RATE
#define RL_DEFAULT_RATE 100
#endif
#ifndef RL_DEFAULT_BURST
#define RL_DEFAULT_BURST 10
#endif
/* Sources tracked at once. */
#ifndef RL_MAX_SOURCES
#define RL_MAX_SOURCES 65536
#endif

#define NSEC_PER_SEC 1000000000ULL

struct rl_config {
    __u32 rate;
    __u32 burst;
};

struct rl_state {
    __u64 tat;
    __u64 passed;
    __u64 dropped;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct rl_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, RL_MAX_SOURCES);
    __type(key, okopy_ipv4_t);
    __type(value, struct rl_state);
} sources SEC(".maps");

SEC("xdp")
int ratelimit(struct xdp_md *ctx)
{
    struct rl_state *st, fresh = {};
    struct rl_config *cfg;
    struct cursor c;
    struct iphdr *iph;
    okopy_ipv4_t saddr;
    __u64 now, interval, tolerance, tat;
    __u32 rate = RL_DEFAULT_RATE, burst = RL_DEFAULT_BURST, zero = 0;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (parse_ipv4(&c, &iph) < 0)
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (cfg) {
        if (cfg->rate)
            rate = cfg->rate;
        if (cfg->burst)
            burst = cfg->burst;
    }
    interval = NSEC_PER_SEC / rate;
    tolerance = interval * burst;
    now = bpf_ktime_get_ns();
    saddr = iph->saddr;

    st = bpf_map_lookup_elem(&sources, &saddr);
    if (!st) {
        fresh.tat = now + interval;
        fresh.passed = 1;
        bpf_map_update_elem(&sources, &saddr, &fresh, BPF_NOEXIST);
        return XDP_PASS;
    }
    tat = st->tat > now ? st->tat : now;
    if (tat - now >= tolerance) {
        __sync_fetch_and_add(&st->dropped, 1);
        return XDP_DROP;
    }
    st->tat = tat + interval;
    __sync_fetch_and_add(&st->passed, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
