/* heavy_hitters.c -- per-source traffic measurement with a count-min sketch.
 *
 * Estimates how many packets each IPv4 source sent in the current time
 * window, in constant memory whatever the number of sources: HH_DEPTH rows
 * of HH_WIDTH counters, one hash function per row; a packet increments
 * one counter per row and the estimate is the smallest of them (never
 * below the true count; above it only when every row collides).
 *
 * Windows are numbered (epoch = now / window_ns) and every counter carries
 * the epoch it counts for: a counter from an older epoch reads as zero and
 * is restarted by the next packet that hashes to it, so no one has to
 * clear the sketch between windows.
 *
 * Sources whose estimate reaches 'report_threshold' are written to the
 * small 'talkers' table, which the controller reads (and sorts) for its
 * top-talkers list.  The filter is a monitor: it passes everything unless
 * 'drop_threshold' is set, when a source's packets over that many per
 * window are dropped.
 *
 * Maps:
 *   config    array[1] of struct hh_config: window_ns, report_threshold,
 *             drop_threshold (0: defaults; drop_threshold 0 never drops).
 *   sketch    array[HH_DEPTH * HH_WIDTH] of struct hh_cell: row r, column
 *             c at index r * HH_WIDTH + c; the epoch and the count.
 *   talkers   LRU hash okopy_ipv4_t -> struct hh_talker: latest estimate,
 *             its epoch and time, for sources at or over the threshold.
 * Verdicts: XDP_PASS, or XDP_DROP over drop_threshold when it is set. */

#include <okopy/parse.h>
#include <okopy/types.h>

/* Sketch shape: the error is about e/HH_WIDTH of the window's packets with
 * probability 1 - e^-HH_DEPTH.  HH_WIDTH must be 1 << HH_WIDTH_BITS. */
#ifndef HH_DEPTH
#define HH_DEPTH 4
#endif
#ifndef HH_WIDTH_BITS
#define HH_WIDTH_BITS 11
#endif
#define HH_WIDTH (1u << HH_WIDTH_BITS)
_Static_assert(HH_DEPTH >= 1 && HH_DEPTH <= 4, "row_hash() has 4 functions");
/* Defaults while the config map holds zeros: one-second windows, report
 * sources from 1000 packets per window. */
#ifndef HH_DEFAULT_WINDOW_NS
#define HH_DEFAULT_WINDOW_NS 1000000000ULL
#endif
#ifndef HH_DEFAULT_REPORT
#define HH_DEFAULT_REPORT 1000
#endif
/* Size of the talkers table the controller reads. */
#ifndef HH_MAX_TALKERS
#define HH_MAX_TALKERS 128
#endif

struct hh_config {
    __u64 window_ns;
    __u32 report_threshold;
    __u32 drop_threshold;
};

struct hh_cell {
    __u32 epoch;
    __u32 count;
};

struct hh_talker {
    __u32 estimate;     /* packets in window 'epoch', at the latest packet */
    __u32 epoch;
    __u64 last_seen_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct hh_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, HH_DEPTH * HH_WIDTH);
    __type(key, __u32);
    __type(value, struct hh_cell);
} sketch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, HH_MAX_TALKERS);
    __type(key, okopy_ipv4_t);
    __type(value, struct hh_talker);
} talkers SEC(".maps");

/* Multiply-shift hashing (Dietzfelbinger et al.): row 'row' maps 'x' to
 * the top HH_WIDTH_BITS bits of a_row * x + b_row modulo 2^64, with odd
 * multipliers.  The constants are arbitrary 64-bit values; 'row' is a
 * compile-time constant (the loop is unrolled), so they fold into the
 * code. */
static __always_inline __u32
row_hash(int row, __u32 x)
{
    static const __u64 mul[4] = {
        0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
        0x165667b19e3779f9ULL, 0xd6e8feb86659fd93ULL,
    };
    static const __u64 add[4] = {
        0x27d4eb2f165667c5ULL, 0x85ebca77c2b2ae63ULL,
        0xff51afd7ed558ccdULL, 0x4cf5ad432745937fULL,
    };

    return (mul[row] * x + add[row]) >> (64 - HH_WIDTH_BITS);
}

SEC("xdp")
int heavy_hitters(struct xdp_md *ctx)
{
    __u32 report = HH_DEFAULT_REPORT, drop = 0, zero = 0, epoch;
    __u64 window = HH_DEFAULT_WINDOW_NS, now;
    __u32 estimate = 0xffffffff;
    struct hh_talker talker;
    struct hh_config *cfg;
    struct cursor c;
    struct iphdr *iph;
    okopy_ipv4_t saddr;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP) || parse_ipv4(&c, &iph) < 0)
        return XDP_PASS;

    cfg = bpf_map_lookup_elem(&config, &zero);
    if (cfg) {
        if (cfg->window_ns)
            window = cfg->window_ns;
        if (cfg->report_threshold)
            report = cfg->report_threshold;
        drop = cfg->drop_threshold;
    }
    now = bpf_ktime_get_ns();
    epoch = now / window;
    saddr = iph->saddr;

#pragma unroll
    for (int row = 0; row < HH_DEPTH; row++) {
        __u32 idx = row * HH_WIDTH + row_hash(row, bpf_ntohl(saddr));
        struct hh_cell *cell = bpf_map_lookup_elem(&sketch, &idx);

        if (!cell)
            continue;
        if (cell->epoch != epoch) {
            /* First packet of this window here.  Concurrent restarts may
             * lose a few counts of the new window. */
            cell->epoch = epoch;
            cell->count = 0;
        }
        __sync_fetch_and_add(&cell->count, 1);
        if (cell->count < estimate)
            estimate = cell->count;
    }

    if (estimate >= report) {
        talker.estimate = estimate;
        talker.epoch = epoch;
        talker.last_seen_ns = now;
        bpf_map_update_elem(&talkers, &saddr, &talker, BPF_ANY);
    }
    if (drop && estimate > drop)
        return XDP_DROP;
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
