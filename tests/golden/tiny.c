/* The program whose load messages tests/golden/ captures. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp") int tiny(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
