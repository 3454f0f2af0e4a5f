"""The fast port types: AF_XDP ports on veth and DPDK vhost-user ports with
a dpdk-testpmd peer forward through a filter run by the switch's PMD
threads, and the filter's counters match what was sent.  Huge pages are
reserved by the test that needs them and given back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.lab.dpdk import NR_HUGEPAGES, RUNTIME_DIR, HugePages, Testpmd
from okopy.lab.hosts import attach_host
from okopy.netns import Namespace
from okopy.ovs.instance import DpdkSettings, OvsInstance, OvsTools, flow_packets
from okopy.process import CommandError
from okopy.testing.fixtures import BRIDGE, private_switch

ROOT = Path(__file__).resolve().parent.parent.parent
OF13 = ("-O", "OpenFlow13")
PROG = "7"
# dpdk-testpmd's txonly packets: 64-byte UDP from 198.18.0.1 to 198.18.0.2.
TESTPMD_DST = "198.18.0.2"


def filter_flows(switch: OvsInstance, obj: Path) -> None:
    """IPv4 from port 1 -> blocklist -> port 2 when it passes; the rest (the
    hosts' IPv6 neighbour discovery) straight to the other port."""
    switch.ofctl(*OF13, "load-bpf-prog", BRIDGE, PROG, str(obj), "name=blocklist")
    switch.ofctl(*OF13, "del-flows", BRIDGE)
    for flow in (
        f"table=0,priority=100,in_port=1,ip,actions=bpf(prog={PROG},table=1)",
        "table=0,priority=50,in_port=1,actions=output:2",
        "table=0,priority=100,in_port=2,actions=output:1",
        "table=1,priority=100,bpf_verdict=pass,actions=output:2",
        "table=1,priority=0,actions=drop",
    ):
        switch.ofctl(*OF13, "add-flow", BRIDGE, flow)


def program_runs(switch: OvsInstance) -> int:
    dump = switch.ofctl(*OF13, "dump-bpf-progs", BRIDGE)
    m = re.search(r"\bruns=(\d+)", dump)
    assert m, dump
    return int(m.group(1))


def blocked_packets(switch: OvsInstance, address: str) -> int:
    dump = switch.ofctl(*OF13, "lookup-bpf-map", BRIDGE, PROG, "blocked_v4", address)
    m = re.search(r"packets=(\d+)", dump)
    assert m, dump
    return int(m.group(1))


def pmd_ports(switch: OvsInstance) -> str:
    return switch.appctl("ovs-vswitchd", "dpif-netdev/pmd-rxq-show")


def test_afxdp_ports_forward_through_a_filter(switch: OvsInstance, tmp_path: Path) -> None:
    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "blocklist.o")
    with ExitStack() as hosts:
        h1, h2 = (
            attach_host(switch, BRIDGE, f"h{n}", f"10.0.0.{n}/24", n, port_type="afxdp")
            for n in (1, 2)
        )
        hosts.callback(h1.delete)
        hosts.callback(h2.delete)
        # Both ports are polled by a PMD thread, not the main thread.
        rxqs = pmd_ports(switch)
        assert {h1.port, h2.port} <= set(re.findall(r"port: (\S+)", rxqs)), rxqs
        # The XDP program Open vSwitch attached runs in the driver.
        link = switch.netns.run(["ip", "-d", "link", "show", h1.port])  # type: ignore[union-attr]
        assert re.search(r"\bxdp\b", link), link
        # No ARP: every packet from port 1 is an echo request the test counts.
        for a, b in ((h1, h2), (h2, h1)):
            a.ns.run(["ip", "neigh", "replace", b.address, "lladdr", mac(b.ns),
                      "dev", "eth0", "nud", "permanent"])  # fmt: skip
        filter_flows(switch, obj)

        assert h1.ping(h2.address, count=5, interval=0.05).received == 5
        assert program_runs(switch) == 5

        switch.ofctl(*OF13, "update-bpf-map", BRIDGE, PROG, "blocked_v4", h2.address,
                     "{packets=0,bytes=0}")  # fmt: skip
        assert h1.ping(h2.address, count=10, interval=0.05).received == 0
        assert blocked_packets(switch, h2.address) == 10
        assert program_runs(switch) == 15


def test_a_port_the_switch_cannot_open_says_why(switch: OvsInstance) -> None:
    with pytest.raises(CommandError, match=r"port nosuch0 \(afxdp\): .*nosuch0"):
        switch.add_port(BRIDGE, "nosuch0", 3, "afxdp")
    assert "nosuch0" not in switch.vsctl("list-ports", BRIDGE)


def mac(ns: Namespace) -> str:
    return ns.run(["cat", "/sys/class/net/eth0/address"]).strip()


# Memory, in MB of 2 MB huge pages: the switch's DPDK and the peer's.
OVS_MB = 256
PEER_MB = 64


@pytest.fixture
def hugepages(tmp_path: Path, ovs_tools: OvsTools) -> Iterator[HugePages]:
    before = NR_HUGEPAGES.read_text()
    with HugePages(OVS_MB + PEER_MB, tmp_path / "hugepages") as pages:
        yield pages
        prefixes = list(pages.prefixes)
    assert NR_HUGEPAGES.read_text() == before  # given back
    assert not any((RUNTIME_DIR / p).exists() for p in prefixes)


@pytest.fixture
def dpdk_switch(ovs_tools: OvsTools, hugepages: HugePages, tmp_path: Path) -> Iterator[OvsInstance]:
    """A switch whose DPDK takes its memory from the test's huge pages, its
    PMD thread on core 1 (the peer's forwarding lcore is on core 0)."""

    def settings(ns: Namespace) -> DpdkSettings:
        return DpdkSettings(tuple(hugepages.eal_args(f"okopy-ovs-{ns.name}")), OVS_MB, (1,))

    with private_switch(ovs_tools, tmp_path / "ovs", settings) as instance:
        yield instance


def test_vhost_ports_forward_through_a_filter(
    dpdk_switch: OvsInstance, hugepages: HugePages, tmp_path: Path
) -> None:
    switch = dpdk_switch
    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "blocklist.o")
    sockets = [tmp_path / "vhu1.sock", tmp_path / "vhu2.sock"]
    peer = Testpmd(sockets, hugepages, tmp_path / "testpmd.log",
                   prefix=f"okopy-peer-{switch.netns.name}",  # type: ignore[union-attr]
                   megabytes=PEER_MB, main_lcore=1, lcore=0)  # fmt: skip
    # The switch's ports first: the peer, the vhost-user server, waits at
    # start for each client to connect; the clients retry until it listens.
    for ofport, sock in enumerate(sockets, 1):
        switch.add_port(BRIDGE, f"vhu{ofport}", ofport, "vhost", str(sock))
    with peer:
        peer.wait_links()
        rxqs = pmd_ports(switch)
        assert {"vhu1", "vhu2"} <= set(re.findall(r"port: (\S+)", rxqs)), rxqs
        filter_flows(switch, obj)
        # Both peer ports send; only port 0's packets (switch port 1) meet
        # the filter, and only they can reach the peer's port 1.
        sent = send_bursts(peer, switch, 8)
        assert sent > 0
        assert program_runs(switch) == sent
        stats = peer.port_stats()
        assert stats[1].rx_packets == sent, stats

        switch.ofctl(*OF13, "update-bpf-map", BRIDGE, PROG, "blocked_v4", TESTPMD_DST,
                     "{packets=0,bytes=0}")  # fmt: skip
        more = send_bursts(peer, switch, 8)
        assert blocked_packets(switch, TESTPMD_DST) == more
        assert program_runs(switch) == sent + more
        assert peer.port_stats()[1].rx_packets == sent  # none passed
        switch.appctl("ovs-vswitchd", "revalidator/wait")
        counts = flow_packets(switch.ofctl(*OF13, "dump-flows", BRIDGE))
        assert counts["priority=100,bpf_verdict=pass"] == sent, counts


def send_bursts(peer: Testpmd, switch: OvsInstance, bursts: int) -> int:
    """Send 'bursts' bursts of 32 from each of the peer's ports; the packets
    that left port 0, once the switch has run the filter on all of them."""
    before = peer.port_stats()[0].tx_packets
    runs = program_runs(switch)
    peer.command(f"start tx_first {bursts}")
    peer.command("stop")
    sent = peer.port_stats()[0].tx_packets - before
    deadline = time.monotonic() + 10
    while program_runs(switch) < runs + sent and time.monotonic() < deadline:
        time.sleep(0.05)
    return sent
