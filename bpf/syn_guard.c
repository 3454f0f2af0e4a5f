/* syn_guard.c -- SYN-flood guard: a SYN budget per destination and window.
 *
 * Counts connection attempts (TCP SYN without ACK, over IPv4) per
 * destination address in fixed windows of 'window_ns': the first 'budget'
 * SYNs of a window pass, the rest are dropped until the window ends.  A
 * window starts with the first SYN after the previous one ended, so an
 * idle destination costs nothing.  Other packets are not counted.
 *
 * Maps:
 *   config   array[1] of struct sg_config: budget (SYNs per window) and
 *            window_ns; 0 selects the compiled-in default.  Takes effect
 *            for the next SYN.
 *   dests    LRU hash okopy_ipv4_t -> struct sg_window: start of the
 *            current window, SYNs counted in it, SYNs dropped in total.
 * Verdicts: XDP_DROP for a SYN over its destination's budget, XDP_PASS
 *   otherwise (non-SYN, non-TCP, IPv6 and truncated packets included). */

#include <okopy/parse.h>
#include <okopy/time.h>
#include <okopy/types.h>

/* Defaults while the config map holds zeros: 1000 SYNs per second per
 * destination, well above what a single server normally accepts. */
#ifndef SG_DEFAULT_BUDGET
#define SG_DEFAULT_BUDGET 1000
#endif
#ifndef SG_DEFAULT_WINDOW_NS
#define SG_DEFAULT_WINDOW_NS 1000000000ULL
#endif
/* Destinations tracked at once; the least recently attacked are evicted. */
#ifndef SG_MAX_DESTS
#define SG_MAX_DESTS 16384
#endif

struct sg_config {
    __u32 budget;
    __u32 pad;
    __u64 window_ns;
};

struct sg_window {
    __u64 start_ns;
    __u32 syns;         /* SYNs seen in the current window */
    __u32 pad;
    __u64 dropped;      /* SYNs dropped, all windows */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sg_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, SG_MAX_DESTS);
    __type(key, okopy_ipv4_t);
    __type(value, struct sg_window);
} dests SEC(".maps");

SEC("xdp")
int syn_guard(struct xdp_md *ctx)
{
    __u32 budget = SG_DEFAULT_BUDGET, zero = 0;
    __u64 window = SG_DEFAULT_WINDOW_NS, now;
    struct sg_window *w, fresh = {};
    struct sg_config *cfg;
    struct cursor c;
    struct iphdr *iph;
    struct tcphdr *th;
    okopy_ipv4_t daddr;

    cursor_init(&c, ctx);
    if (parse_ipv4_tcp(&c, &iph, &th) < 0)
        return XDP_PASS;
    if ((tcp_flags(th) & (OKOPY_TCP_SYN | OKOPY_TCP_ACK)) != OKOPY_TCP_SYN)
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (cfg) {
        if (cfg->budget)
            budget = cfg->budget;
        if (cfg->window_ns)
            window = cfg->window_ns;
    }
    now = bpf_ktime_get_ns();
    daddr = iph->daddr;
    w = bpf_map_lookup_elem(&dests, &daddr);
    if (!w) {
        fresh.start_ns = now;
        fresh.syns = 1;
        bpf_map_update_elem(&dests, &daddr, &fresh, BPF_NOEXIST);
        return XDP_PASS;
    }
    if (okopy_elapsed(now, w->start_ns) >= window) {
        /* A new window; racing CPUs may each restart it, which only
         * forgives a few SYNs. */
        w->start_ns = now;
        w->syns = 1;
        return XDP_PASS;
    }
    /* clang's default BPF target has no fetching atomics: add, then read
     * (a concurrent SYN may be counted in both reads, erring strict). */
    __sync_fetch_and_add(&w->syns, 1);
    if (w->syns <= budget)
        return XDP_PASS;
    __sync_fetch_and_add(&w->dropped, 1);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
