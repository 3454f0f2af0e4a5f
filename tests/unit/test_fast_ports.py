"""The pure parts of the fast ports: interface settings per port type, DPDK
settings, testpmd's statistics, and huge pages the kernel will not give."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from okopy.bench.common import Sample
from okopy.bench.datapath import DatapathRun, _checks, busiest_thread_cycles, generator_syn
from okopy.lab.dpdk import HugePages, HugePagesUnavailable, PortStats, parse_port_stats
from okopy.ovs.instance import DpdkSettings, interface_settings

# `show port stats all` of dpdk-testpmd 22.11, as it prints it.
STATS = """
  ######################## NIC statistics for port 0  ########################
  RX-packets: 12         RX-missed: 1          RX-bytes:  768
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 256        TX-errors: 3          TX-bytes:  16384

  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:            0          Tx-bps:            0
  ############################################################################

  ######################## NIC statistics for port 1  ########################
  RX-packets: 256        RX-missed: 0          RX-bytes:  16384
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 0          TX-errors: 0          TX-bytes:  0
  ############################################################################
testpmd> """


def test_testpmd_port_stats() -> None:
    assert parse_port_stats(STATS) == {
        0: PortStats(rx_packets=12, rx_missed=1, tx_packets=256, tx_errors=3),
        1: PortStats(rx_packets=256, rx_missed=0, tx_packets=0, tx_errors=0),
    }
    assert parse_port_stats("testpmd> ") == {}


def test_interface_settings_per_port_type() -> None:
    assert interface_settings("afpacket", "") == []
    assert interface_settings("afxdp", "") == ["type=afxdp", "options:xdp-mode=native"]
    assert interface_settings("vhost", "/run/a b.sock") == [
        "type=dpdkvhostuserclient",
        'options:vhost-server-path="/run/a b.sock"',
    ]
    with pytest.raises(ValueError, match=r"unknown port type 'dpdk' .*afpacket, afxdp, vhost"):
        interface_settings("dpdk", "")


def test_dpdk_settings() -> None:
    s = DpdkSettings(("--no-pci", "--huge-dir=/h"), 256, (1,))
    assert s.other_config() == [
        "other_config:dpdk-init=true",
        'other_config:dpdk-extra="--no-pci --huge-dir=/h"',
        "other_config:dpdk-socket-mem=256",
        "other_config:dpdk-socket-limit=256",
        "other_config:per-port-memory=true",
        "other_config:pmd-cpu-mask=0x2",
    ]


class StingyPool:
    """A kernel that keeps at most 'most' huge pages."""

    def __init__(self, now: int, most: int) -> None:
        self.now, self.most = now, most

    def read_text(self) -> str:
        return f"{self.now}\n"

    def write_text(self, data: str) -> int:
        self.now = min(int(data), self.most)
        return len(data)


def test_huge_pages_the_kernel_will_not_give(tmp_path: Path) -> None:
    pool = StingyPool(4, 10)
    pages = HugePages(64, tmp_path / "mnt", pool)
    with pytest.raises(HugePagesUnavailable, match=r"32 huge pages of 2 MB \(64 MB\) beyond the 4"
                       r" reserved, and it gave 6"):  # fmt: skip
        pages.reserve()
    assert pool.now == 4  # what it did get is given back
    assert not (tmp_path / "mnt").exists()


def test_huge_pages_given_back_by_another_process(tmp_path: Path) -> None:
    """`okopy lab up` reserves, `okopy lab down` (another process) gives
    back: what release() needs goes through the lab's state as JSON."""
    pool = StingyPool(4, 100)
    pages = HugePages(64, tmp_path / "mnt", pool)
    pages.added, pages.mounted = 32, False  # as reserve() leaves them, unmounted
    pool.now = 36
    pages.eal_args("okopy-lab-x-ovs")
    state = json.loads(json.dumps(pages.state()))
    assert state == {"megabytes": 64, "mount": str(tmp_path / "mnt"), "added": 32,
                     "mounted": False, "prefixes": ["okopy-lab-x-ovs"]}  # fmt: skip
    other = HugePages.adopt(state, pool)
    other.release()
    assert pool.now == 4
    assert other.added == 0
    assert not other.prefixes
    other.release()  # twice is harmless
    assert pool.now == 4


def test_huge_pages_come_in_2_mb() -> None:
    for bad in (0, 3, -2):
        with pytest.raises(ValueError, match="not a positive multiple of 2 MB"):
            HugePages(bad, Path("/nonexistent"))


# `ovs-appctl dpif-netdev/pmd-stats-show` of the patched switch, abridged.
PMD_STATS = """pmd thread numa_id 0 core_id 1:
  packets received: 6482944
  packet recirculations: 0
  avg cycles per packet: 2217.24 (14374274941/6482944)
  avg processing cycles per packet: 331.77 (2150817750/6482944)
main thread:
  packets received: 12
  avg cycles per packet: 9000.00 (108000/12)
  avg processing cycles per packet: 8000.50 (96006/12)
"""


def test_cycles_of_the_busiest_thread() -> None:
    assert busiest_thread_cycles(PMD_STATS) == 331.77
    assert busiest_thread_cycles(PMD_STATS.replace("6482944", "3")) == 8000.50
    assert math.isnan(busiest_thread_cycles("main thread:\n  packets received: 0\n"))


def test_tracing_checks() -> None:
    """The probes' cost is judged round by round against the probe-less
    switch (a spread that includes 1.0 is nothing measurable), a tracer's
    round by round against recirc."""
    run = DatapathRun(runs=3, seconds=1.0)
    run.pps = {
        "recirc": Sample((100.0, 80.0, 98.0)),
        "no-usdt": Sample((99.0, 84.0, 99.0)),  # ratios 1.010, 0.952, 0.990
        "traced": Sample((85.0, 75.0, 86.0)),  # 0.850, 0.9375, 0.878
        "topped": Sample((95.0, 76.0, 93.0)),
    }
    checks = {what: (ok, detail) for what, ok, detail in _checks(run)}
    ok, detail = checks["USDT probes cost nothing measurable with no tracer attached"]
    assert ok
    assert "median 0.990 (min 0.952, max 1.010)" in detail
    ok, detail = checks["okopy trace attached costs at most 10% of the filtered rate"]
    assert not ok
    assert "median 0.878" in detail
    assert checks["okopy top attached costs at most 10% of the filtered rate"][0]
    run.pps["no-usdt"] = Sample((120.0, 90.0, 119.0))
    checks = {what: (ok, detail) for what, ok, detail in _checks(run)}
    assert not checks["USDT probes cost nothing measurable with no tracer attached"][0]


def test_added_ns_pairs_rounds_and_reads_the_tsc() -> None:
    """What a configuration adds: per round, then the median, in ns."""
    run = DatapathRun(runs=3, seconds=1.0, io="dpdk", flows=1)
    # Round 2 is slow for both (drift): its difference is still 100 cycles.
    run.cycles = {"plain": Sample((200.0, 400.0, 210.0)), "monitor": Sample((300.0, 500.0, 290.0))}
    run.tsc_mhz = 2000.0
    assert run.added_ns("monitor") == 50.0  # median of 100, 100, 80 cycles
    assert math.isnan(run.added_ns("recirc"))
    run.tsc_mhz = float("nan")
    assert math.isnan(run.added_ns("monitor"))
    syn = generator_syn()
    assert len(syn) == 60
    assert syn[47] == 0x02  # TCP flags: SYN


def test_sample_fmt_says_dash_without_a_figure() -> None:
    """A report cell: median (min-max), or '-' for nothing measured (no
    values, or cycles no thread counted)."""
    assert Sample((3.0, 1.0, 2.0)).fmt(" ms", 1) == "2.0 ms (1.0-3.0)"
    assert Sample(()).fmt(digits=3) == "-"
    assert Sample((float("nan"), float("nan"))).fmt() == "-"
