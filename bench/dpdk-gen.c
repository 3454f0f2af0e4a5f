/* dpdk-gen.c -- packet generator and sink for `okopy bench datapath
 * --io dpdk`.
 *
 * On one lcore, in one loop: send 64-byte TCP SYNs (60-byte frames plus
 * the FCS a wire would add) on port 0 as fast as the port takes them, and
 * receive and count what arrives on port 1.  The ports are whatever the
 * EAL arguments make them; the bench gives two net_virtio_user ports whose
 * vhost-user peers are a switch's dpdkvhostuserclient ports.
 *
 * The SYNs cycle over --flows connections (source address and port vary;
 * destination fixed), built once before sending; each burst copies its
 * frames into fresh mbufs, as a wire would hand the switch new buffers.
 * A warm-up period (not counted) lets the switch fill its caches, then
 * one window of --seconds is measured.  What it prints, one JSON object
 * on standard output, is all the bench reads:
 *
 *   {"seconds": S, "tx": N, "rx": N, "tx_pps": X, "rx_pps": X}
 *
 * Exit status 0, or 1 with a message on standard error naming what is
 * wrong (an argument, a port, memory). */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#define BURST 32
#define RING_SIZE 1024
#define N_MBUFS 8191
#define FRAME_LEN 60
#define MAX_FLOWS 65536

struct options {
    double seconds;
    double warmup;
    unsigned int flows;
    uint32_t dst_ip;          /* host order */
    uint16_t dst_port;
};

static volatile bool stop;

static void
on_signal(int sig)
{
    (void) sig;
    stop = true;
}

static void
fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "dpdk-gen: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    rte_eal_cleanup();
    exit(1);
}

static double
parse_seconds(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || !(v > 0) || v > 3600) {
        fail("%s: give seconds between 0 and 3600", what);
    }
    return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {"flows", required_argument, NULL, 'f'},
        {"dst-ip", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->seconds = 1;
    o->warmup = 0.5;
    o->flows = 1;
    o->dst_ip = RTE_IPV4(10, 9, 1, 3);
    o->dst_port = 80;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            o->seconds = parse_seconds(optarg, "--seconds");
            break;
        case 'w':
            o->warmup = parse_seconds(optarg, "--warmup");
            break;
        case 'f': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);

            if (*optarg == '\0' || *end != '\0' || n < 1 || n > MAX_FLOWS) {
                fail("--flows %s: give 1 to 65536", optarg);
            }
            o->flows = n;
            break;
        }
        case 'd': {
            unsigned int a, b, x, y;
            char tail;

            if (sscanf(optarg, "%u.%u.%u.%u%c", &a, &b, &x, &y, &tail) != 4
                || a > 255 || b > 255 || x > 255 || y > 255) {
                fail("--dst-ip %s: give an IPv4 address", optarg);
            }
            o->dst_ip = RTE_IPV4(a, b, x, y);
            break;
        }
        default:
            fail("%s", "usage: dpdk-gen EAL-ARGS -- [--seconds S] [--warmup S] "
                 "[--flows N] [--dst-ip A.B.C.D]");
        }
    }
    if (optind < argc) {
        fail("unexpected argument %s", argv[optind]);
    }
}

/* Frame 'i' of the flows: a TCP SYN from 10.8.(i / 256).(i % 256), port
 * 1024 + i % 16384, to the destination. */
static void
build_frame(uint8_t *f, unsigned int i, const struct options *o)
{
    static const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
    static const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *) (f + 14);
    struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *) (ip + 1);

    memset(f, 0, FRAME_LEN);
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, src_mac, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(sizeof *ip + sizeof *tcp);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 8, (i >> 8) & 0xff, i & 0xff));
    ip->dst_addr = rte_cpu_to_be_32(o->dst_ip);
    tcp->src_port = rte_cpu_to_be_16(1024 + i % 16384);
    tcp->dst_port = rte_cpu_to_be_16(o->dst_port);
    tcp->sent_seq = rte_cpu_to_be_32(1);
    tcp->data_off = (sizeof *tcp / 4) << 4;
    tcp->tcp_flags = RTE_TCP_SYN_FLAG;
    tcp->rx_win = rte_cpu_to_be_16(65535);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
}

static void
setup_port(uint16_t port, struct rte_mempool *pool)
{
    struct rte_eth_conf conf;
    char name[16];
    int err;

    memset(&conf, 0, sizeof conf);
    snprintf(name, sizeof name, "%u", port);
    if (rte_eth_dev_configure(port, 1, 1, &conf) < 0
        || rte_eth_rx_queue_setup(port, 0, RING_SIZE,
                                  rte_eth_dev_socket_id(port), NULL, pool) < 0
        || rte_eth_tx_queue_setup(port, 0, RING_SIZE,
                                  rte_eth_dev_socket_id(port), NULL) < 0) {
        fail("cannot set up port %s", name);
    }
    err = rte_eth_dev_start(port);
    if (err < 0) {
        fail("cannot start port %s", name);
    }
}

/* Send and receive until 'until' (TSC); adds to 'tx' and 'rx'. */
static void
run(uint8_t (*frames)[FRAME_LEN], unsigned int n_frames,
    struct rte_mempool *pool, uint64_t until, uint64_t *tx, uint64_t *rx,
    unsigned int *next)
{
    struct rte_mbuf *out[BURST], *in[BURST];

    while (!stop && rte_rdtsc() < until) {
        uint16_t n = rte_eth_rx_burst(1, 0, in, BURST);

        if (n) {
            *rx += n;
            rte_pktmbuf_free_bulk(in, n);
        }
        if (rte_pktmbuf_alloc_bulk(pool, out, BURST) != 0) {
            continue;
        }
        for (int i = 0; i < BURST; i++) {
            uint8_t *d = rte_pktmbuf_mtod(out[i], uint8_t *);

            rte_memcpy(d, frames[*next], FRAME_LEN);
            out[i]->data_len = out[i]->pkt_len = FRAME_LEN;
            if (++*next == n_frames) {
                *next = 0;
            }
        }
        n = rte_eth_tx_burst(0, 0, out, BURST);
        *tx += n;
        if (n < BURST) {
            rte_pktmbuf_free_bulk(out + n, BURST - n);
        }
    }
}

int
main(int argc, char **argv)
{
    struct options o;
    struct rte_mempool *pool;
    uint8_t (*frames)[FRAME_LEN];
    uint64_t tx = 0, rx = 0, hz, t0, t1;
    unsigned int next = 0;
    int n = rte_eal_init(argc, argv);

    if (n < 0) {
        fprintf(stderr, "dpdk-gen: EAL initialisation failed: %s\n",
                rte_strerror(rte_errno));
        return 1;
    }
    parse_options(argc - n, argv + n, &o);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (rte_eth_dev_count_avail() < 2) {
        fail("%s", "needs two ports (send on port 0, receive on port 1)");
    }
    pool = rte_pktmbuf_pool_create("dpdk-gen", N_MBUFS, 256, 0,
                                   RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    frames = calloc(o.flows, sizeof *frames);
    if (!pool || !frames) {
        fail("%s", "out of memory (huge pages) for packet buffers");
    }
    for (unsigned int i = 0; i < o.flows; i++) {
        build_frame(frames[i], i, &o);
    }
    setup_port(0, pool);
    setup_port(1, pool);

    hz = rte_get_tsc_hz();
    run(frames, o.flows, pool, rte_rdtsc() + (uint64_t) (o.warmup * hz),
        &tx, &rx, &next);
    tx = rx = 0;
    t0 = rte_rdtsc();
    run(frames, o.flows, pool, t0 + (uint64_t) (o.seconds * hz),
        &tx, &rx, &next);
    t1 = rte_rdtsc();
    {
        double s = (double) (t1 - t0) / hz;

        printf("{\"seconds\": %.6f, \"tx\": %" PRIu64 ", \"rx\": %" PRIu64
               ", \"tx_pps\": %.1f, \"rx_pps\": %.1f}\n",
               s, tx, rx, tx / s, rx / s);
    }
    fflush(stdout);
    rte_eth_dev_stop(0);
    rte_eth_dev_stop(1);
    rte_eth_dev_close(0);
    rte_eth_dev_close(1);
    free(frames);
    rte_eal_cleanup();
    return stop ? 1 : 0;
}
