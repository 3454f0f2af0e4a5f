/* leaky.c -- programs the lenient (privileged) kernel verifier admits but
 * the switch must refuse, one per function, plus two that must load: one
 * the strict rules admit and one that needs the privileged rules
 * (variable-offset packet access). */
#include "common.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} ptrs SEC(".maps");

/* Kernel strict rules: "invalid read from stack" (k[0] never written). */
SEC("xdp")
int uninit_key(struct xdp_md *ctx)
{
    __u32 k[2];

    k[1] = 0;
    return bpf_map_lookup_elem(&ptrs, &k[0]) ? XDP_DROP : XDP_PASS;
}

/* Kernel strict rules: variable-offset stack read of uninitialised
 * bytes. */
SEC("xdp")
int uninit_var(struct xdp_md *ctx)
{
    volatile __u32 x[4];

    return x[ctx->ingress_ifindex & 3];
}

/* Structural verifier: stack pointer stored into a map value. */
SEC("xdp")
int leak_store(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&ptrs, &k);

    if (!v) {
        return XDP_PASS;
    }
    *v = (__u64) (long) &k;
    return XDP_PASS;
}

/* Structural verifier: context pointer returned as the verdict. */
SEC("xdp")
int leak_verdict(struct xdp_md *ctx)
{
    long r = (long) ctx;

    asm volatile("" : "+r"(r));
    return r;
}

/* Structural verifier: packet pointer in a map_update_elem() value. */
SEC("xdp")
int leak_value(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 v = (__u64) (long) ctx->data;

    bpf_map_update_elem(&ptrs, &k, &v, 0);
    return XDP_PASS;
}

/* Admitted by the strict rules. */
SEC("xdp")
int clean(struct xdp_md *ctx)
{
    __u32 k = ctx->ingress_ifindex & 3;
    __u64 *v = bpf_map_lookup_elem(&ptrs, &k);

    if (v) {
        __sync_fetch_and_add(v, 1);
    }
    return XDP_PASS;
}

/* Variable-offset packet access: Spectre v1 rules refuse it for
 * unprivileged users; admitted with the privileged rules only. */
SEC("xdp")
int varpkt(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;
    unsigned char *end = (void *) (long) ctx->data_end;
    unsigned char *p;
    __u32 off;

    if (data + 1 > end) {
        return XDP_PASS;
    }
    off = data[0] & 15;
    p = data + off;
    if (p + 1 > end) {
        return XDP_PASS;
    }
    return p[0];
}

/* As varpkt, then reads a stack slot it never wrote: the strict rules
 * stop at the packet access, the privileged ones allow the read. */
SEC("xdp")
int varpkt_uninit(struct xdp_md *ctx)
{
    unsigned char *data = (void *) (long) ctx->data;
    unsigned char *end = (void *) (long) ctx->data_end;
    volatile __u64 x;
    unsigned char *p;

    if (data + 1 > end) {
        return XDP_PASS;
    }
    p = data + (data[0] & 15);
    if (p + 1 > end) {
        return XDP_PASS;
    }
    return p[0] + (__u32) x;
}

char _license[] SEC("license") = "GPL";
