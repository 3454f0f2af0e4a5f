"""Reading perf's report into the groups of `okopy bench datapath --profile`."""

from __future__ import annotations

import pytest

from okopy.bench.profile import OTHER, Profile, parse_report

pytestmark = pytest.mark.unit

# The shape of `perf report --stdio --no-children --sort dso,sym -t ';'`.
REPORT = """\
# Samples: 8K of event 'cpu-clock:ppp'
#
# Overhead;Shared Object;Symbol
    12.00%;ovs-vswitchd;[.] hash_find
     4.00%;ovs-vswitchd;[.] hash_lookup_16
    10.50%;[vdso];[.] __vdso_clock_gettime
     5.00%;[JIT] tid 25718;[.] 0x00007fb2f2a5f6fc
     4.00%;ovs-vswitchd;[.] okovm_prog_run_batch
    30.00%;librte_vhost.so.23.0;[.] rte_vhost_dequeue_burst
     3.00%;ovs-vswitchd;[.] netdev_dpdk_vhost_rxq_recv
    20.00%;ovs-vswitchd;[.] dp_netdev_input__
     2.00%;ovs-vswitchd;[.] conntrack_execute
     1.50%;libc.so.6;[.] __memcmp_evex_movbe
     0.10%;[kernel.kallsyms];[k] __do_softirq
     0.20%;ovs-vswitchd;[.] dp_packet_use_afxdp
     0.05%;libxdp.so.1;[.] xsk_ring_prod__reserve
"""


def test_parse_report_and_groups() -> None:
    symbols = parse_report(REPORT)
    assert symbols[0] == (30.0, "librte_vhost.so.23.0", "rte_vhost_dequeue_burst")
    assert (12.0, "ovs-vswitchd", "hash_find") in symbols
    assert symbols[-1] == (0.05, "libxdp.so.1", "xsk_ring_prod__reserve")
    groups = Profile("monitor", 1, "dpdk", "pmd-c01/id:3", symbols=symbols).groups()
    assert groups["BPF maps (libokovm)"] == 16.0
    assert groups["clock reads"] == 10.5
    assert groups["BPF program (native code)"] == 5.0
    assert groups["bpf action (libokovm, dp-bpf)"] == 4.0
    assert groups["vhost-user I/O (DPDK)"] == 33.0
    assert groups["conntrack"] == 2.0
    assert groups["Open vSwitch datapath"] == 20.0
    assert groups["AF_XDP I/O (netdev-afxdp, libxdp)"] == pytest.approx(0.25)
    assert groups["kernel"] == pytest.approx(0.1)
    assert groups[OTHER] == pytest.approx(1.5)
    assert sum(groups.values()) == pytest.approx(sum(p for p, _, _ in symbols))
