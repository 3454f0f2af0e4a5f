/* badhelper.c -- calls bpf_get_smp_processor_id (8): must be refused. */
#include "common.h"

SEC("xdp")
int f(struct xdp_md *ctx)
{
    return bpf_get_smp_processor_id() ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
