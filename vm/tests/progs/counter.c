/* counter.c -- counts packets per in_port in a pinned hash map, keeps
 * totals in an array with atomic adds, returns a tunable verdict; uses a
 * subprogram, printk, ktime and prandom. */
#include "common.h"

/* Packets per ingress port; shared by name with replace.c. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_count SEC(".maps");

/* [0]: packets (64-bit add), [1]: bytes (fetch-add), [2]: last time,
 * [3]: last random, [4]: 32-bit counter. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} totals SEC(".maps");

const volatile __u32 verdict = XDP_PASS;
__u64 runs;

static __attribute__((noinline)) int
bump(__u32 port)
{
    __u64 one = 1, *v = bpf_map_lookup_elem(&port_count, &port);

    if (v) {
        __sync_fetch_and_add(v, 1);
        return 0;
    }
    return bpf_map_update_elem(&port_count, &port, &one, BPF_NOEXIST);
}

SEC("xdp")
int count(struct xdp_md *ctx)
{
    void *data = (void *) (long) ctx->data;
    void *data_end = (void *) (long) ctx->data_end;
    __u32 k;
    __u64 *v;

    bump(ctx->ingress_ifindex);
    k = 0;
    v = bpf_map_lookup_elem(&totals, &k);
    if (v) {
        __sync_fetch_and_add(v, 1);
    }
    k = 1;
    v = bpf_map_lookup_elem(&totals, &k);
    if (v) {
        __u64 old = __sync_fetch_and_add(v, data_end - data);
        (void) old;
    }
    k = 2;
    v = bpf_map_lookup_elem(&totals, &k);
    if (v) {
        *v = bpf_ktime_get_ns();
    }
    k = 3;
    v = bpf_map_lookup_elem(&totals, &k);
    if (v) {
        *v = bpf_get_prandom_u32();
    }
    k = 4;
    v = bpf_map_lookup_elem(&totals, &k);
    if (v) {
        __sync_fetch_and_add((__u32 *) v, 3);
    }
    runs++;
    bpf_printk("port %u len %d", ctx->ingress_ifindex,
               (int) (data_end - data));
    return verdict;
}

char _license[] SEC("license") = "GPL";
