/* p0f.c -- passive OS fingerprinting of TCP SYNs, after p0f.
 *
 * A SYN says much about the stack that sent it: its initial TTL, window,
 * MSS, window scale, and which TCP options it sends in which order.  For
 * each IPv4 SYN (without ACK) this filter builds that signature, looks it
 * up in a table of known signatures and labels, records the source's
 * latest fingerprint, and applies the label's verdict (so a controller can
 * drop, say, a scanner's hand-made SYNs).
 *
 * Signatures are looked up from specific to general, like p0f's '*' and
 * 'mss*N' fields:
 *   1. exact: MSS and raw window as seen;
 *   2. any MSS, window as a multiple of the MSS (win_mss = 1), when the
 *      window is one (stacks that scale the window with the MSS);
 *   3. any MSS, raw window.
 * The initial TTL is guessed as the next of 32, 64, 128, 255 at or above
 * the TTL seen; the difference is the hop distance.
 *
 * Maps:
 *   signatures  hash struct p0f_sig -> struct p0f_label: label, whether
 *               to drop, and SYNs matched.  Written by the controller.
 *   hosts       LRU hash okopy_ipv4_t -> struct p0f_host: the source's
 *               latest SYN signature, its label ("" if unknown), hop
 *               distance, SYNs seen and when.
 * Verdicts: XDP_DROP for SYNs whose label says so; XDP_PASS otherwise. */

/* Options walked and kept in a signature's layout: real stacks send up
 * to about eight (p0f's database has none longer than ten), and each
 * more costs verification time. */
#ifndef OKOPY_TCP_MAX_OPTS
#define OKOPY_TCP_MAX_OPTS 10
#endif
#define P0F_LAYOUT OKOPY_TCP_MAX_OPTS

#include <okopy/parse.h>
#include <okopy/types.h>

/* Sources remembered; the least recently seen are forgotten. */
#ifndef P0F_MAX_HOSTS
#define P0F_MAX_HOSTS 65536
#endif
#ifndef P0F_MAX_SIGNATURES
#define P0F_MAX_SIGNATURES 4096
#endif

struct p0f_sig {
    __u8 ittl;              /* initial TTL guess: 32, 64, 128 or 255 */
    __u8 wscale;            /* window scale option, 0 if absent */
    __u16 mss;              /* 0: absent, or any (lookups 2 and 3) */
    __u16 window;           /* raw, or a multiple of the MSS */
    __u8 win_mss;           /* 1: window is a multiple of the MSS */
    __u8 df;                /* IPv4 don't-fragment bit */
    /* Options in order: M mss, N nop, W window scale, S sack permitted,
     * T timestamps, E end of list, ? any other. */
    char layout[P0F_LAYOUT];
};

struct p0f_label {
    char label[24];
    __u32 drop;             /* 1: drop SYNs with this label */
    __u32 pad;
    __u64 hits;
};

struct p0f_host {
    struct p0f_sig sig;     /* as seen (exact form) */
    char label[24];
    __u32 distance;         /* ittl - ttl */
    __u32 syns;
    __u64 last_seen_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, P0F_MAX_SIGNATURES);
    __type(key, struct p0f_sig);
    __type(value, struct p0f_label);
} signatures SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, P0F_MAX_HOSTS);
    __type(key, okopy_ipv4_t);
    __type(value, struct p0f_host);
} hosts SEC(".maps");

static __always_inline __u8
guess_ittl(__u8 ttl)
{
    if (ttl <= 32)
        return 32;
    if (ttl <= 64)
        return 64;
    if (ttl <= 128)
        return 128;
    return 255;
}

/* The layout letter of option 'kind'.  A table packed in two constants
 * rather than a switch: with a switch the verifier follows a path per
 * letter and position, with the table most letters are one unknown. */
#define P0F_LETTERS_0_7 0x3f3f3f53574d4e45ULL    /* "ENMWS???" */
#define P0F_LETTERS_8_10 0x3f54ULL               /* "T?" and NUL */

static __always_inline char
option_letter(__u8 kind)
{
    __u32 idx = kind == OKOPY_TCPOPT_NONE ? 10 : kind > 8 ? 9 : kind;

    if (idx < 8)
        return P0F_LETTERS_0_7 >> (idx * 8);
    return P0F_LETTERS_8_10 >> ((idx - 8) * 8);
}

/* The label for 'sig' (exact form), trying the general forms after. */
static __always_inline struct p0f_label *
classify(const struct p0f_sig *sig)
{
    struct p0f_label *label;
    struct p0f_sig key;

    label = bpf_map_lookup_elem(&signatures, sig);
    if (label)
        return label;
    key = *sig;
    key.mss = 0;
    if (sig->mss && sig->window && sig->window % sig->mss == 0) {
        key.window = sig->window / sig->mss;
        key.win_mss = 1;
        label = bpf_map_lookup_elem(&signatures, &key);
        if (label)
            return label;
        key.window = sig->window;
        key.win_mss = 0;
    }
    return bpf_map_lookup_elem(&signatures, &key);
}

SEC("xdp")
int p0f(struct xdp_md *ctx)
{
    struct p0f_host host = {}, *seen;
    struct p0f_sig *sig = &host.sig;
    struct p0f_label *label;
    struct tcp_opts opts;
    struct cursor c;
    struct iphdr *iph;
    struct tcphdr *th;
    okopy_ipv4_t saddr;

    cursor_init(&c, ctx);
    if (parse_ipv4_tcp(&c, &iph, &th) < 0)
        return XDP_PASS;
    if ((tcp_flags(th) & (OKOPY_TCP_SYN | OKOPY_TCP_ACK)) != OKOPY_TCP_SYN)
        return XDP_PASS;
    if (parse_tcp_options(th, c.end, &opts) < 0)
        return XDP_PASS;

    sig->ittl = guess_ittl(iph->ttl);
    sig->wscale = opts.wscale;
    sig->mss = opts.mss;
    sig->window = bpf_ntohs(th->window);
    sig->df = (iph->frag_off & bpf_htons(0x4000)) != 0;
#pragma unroll
    for (int i = 0; i < P0F_LAYOUT; i++)
        sig->layout[i] = option_letter(opts.kinds[i]);

    label = classify(sig);
    if (label) {
        __sync_fetch_and_add(&label->hits, 1);
        __builtin_memcpy(host.label, label->label, sizeof host.label);
    }
    host.distance = sig->ittl - iph->ttl;
    host.last_seen_ns = bpf_ktime_get_ns();
    saddr = iph->saddr;
    seen = bpf_map_lookup_elem(&hosts, &saddr);
    host.syns = seen ? seen->syns + 1 : 1;
    bpf_map_update_elem(&hosts, &saddr, &host, BPF_ANY);
    return label && label->drop ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
