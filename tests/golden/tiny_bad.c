/* A program the switch must refuse (it writes to the packet): its refusal
 * is a golden reply (tests/golden/replies/). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp") int tiny_bad(struct xdp_md *ctx)
{
    unsigned char *p = (unsigned char *)(long)ctx->data;

    if (p + 1 > (unsigned char *)(long)ctx->data_end)
        return XDP_PASS;
    p[0] = 0;
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
