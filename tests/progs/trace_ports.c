/* trace_ports.c -- prints the UDP destination port of every IPv4 UDP
 * packet with bpf_trace_printk() and passes everything: the test program of
 * `okopy run --trace` and `okopy lab tracelog`. */
#include <okopy/parse.h>

SEC("xdp")
int trace_ports(struct xdp_md *ctx)
{
    struct cursor c;
    struct iphdr *iph;
    struct udphdr *uh;

    cursor_init(&c, ctx);
    if (parse_eth(&c, NULL) != bpf_htons(ETH_P_IP) ||
        parse_ipv4(&c, &iph) != IPPROTO_UDP || parse_udp(&c, &uh) < 0)
        return XDP_PASS;
    bpf_printk("udp to port %d", bpf_ntohs(uh->dest));
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
