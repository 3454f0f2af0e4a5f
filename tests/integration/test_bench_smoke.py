"""The benchmarks still run (a smoke run: tiny sizes, short traffic).

Speed is measured by `okopy bench`, never asserted here."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from okopy.bench import acl, datapath, profile, scaling, vmbench
from okopy.lab.dpdk import NR_HUGEPAGES
from okopy.netns import existing
from okopy.ovs.instance import OvsTools
from okopy.paths import Layout


def test_scaling_smoke(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    lines: list[str] = []
    run = scaling.run(layout, sizes=(1, 10), runs=1, seconds=0.3, log=lines.append,
                      out_dir=tmp_path)  # fmt: skip
    variants = {r.variant for r in run.results}
    assert variants >= {"iptables (legacy)", "nftables set", "OVS flows", "okopy LPM trie"}
    assert all(r.pps.median > 0 for r in run.results), lines
    okopy = [r for r in run.results if r.variant == "okopy LPM trie"]
    assert all(len(r.add_connected_ms.values) == scaling.CONNECTED_ADDS for r in okopy), lines
    assert all(len(r.vs_reference.values) == 1 for r in okopy), lines
    report = (tmp_path / "scaling.md").read_text()
    assert "| nftables set | 10 |" in report
    assert (tmp_path / "scaling.png").stat().st_size > 0
    data = json.loads((tmp_path / "scaling.json").read_text())
    assert data["machine"]["cores"] >= 1
    assert len(data["results"]) == 2 * len(variants)


def test_acl_smoke(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    lines: list[str] = []
    run = acl.run(layout, sizes=(10, 64), runs=1, seconds=0.3, log=lines.append,
                  out_dir=tmp_path)  # fmt: skip
    names = {r.variant for r in run.results}
    assert names == {v.name for v in acl.variants(layout)}, lines
    assert all(r.pps.median > 0 for r in run.results), lines
    for r in run.results:
        if r.variant == acl.Plain.name:
            continue
        assert len(r.add_ms.values) == acl.UPDATES, lines
        assert len(r.delete_ms.values) == acl.UPDATES, lines
    # okopy's changes are the compiler's few map writes; the paced
    # packets were counted (their loss is reported, not asserted: a busy
    # machine drops packets on its own).
    okopy = [r for r in run.results if r.variant.startswith("okopy")]
    assert all(0 < r.writes <= 12 for r in okopy), lines
    assert all(len(r.loss.values) == 1 for r in okopy), lines
    report = (tmp_path / "acl.md").read_text()
    assert "| nftables interval map | 64 |" in report
    assert "## Targets" in report
    assert (tmp_path / "acl.png").stat().st_size > 0
    data = json.loads((tmp_path / "acl.json").read_text())
    assert len(data["results"]) == len(run.results)


def test_vm_bench_smoke(layout: Layout, kernel_bpf: None, tmp_path: Path) -> None:
    rows = vmbench.run(layout, repeat=200, n_packets=2, log=lambda m: None, out_dir=tmp_path)
    assert {r.name for r in rows} >= {"blocklist", "ratelimit", "prefix_blocklist"}
    assert all(r.vm_ns > 0 and r.kernel_ns > 0 for r in rows)
    if platform.machine() == "x86_64":
        assert all(r.jit and r.jit_ns > 0 for r in rows), rows
    assert "| ratelimit |" in (tmp_path / "vm.md").read_text()
    assert (tmp_path / "vm.png").stat().st_size > 0


def test_datapath_smoke(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    lines: list[str] = []
    configs = (*datapath.DEFAULT_CONFIGS, "traced", "topped")  # no-usdt needs a second build
    run = datapath.run(layout, runs=1, seconds=0.3, configs=configs, log=lines.append,
                       out_dir=tmp_path)  # fmt: skip
    assert set(run.pps) == {"plain", "monitor", "recirc", "one-pass", "recirc-interp", "ct",
                            "traced", "topped"}  # fmt: skip
    assert all(s.median > 0 for s in run.pps.values()), lines
    # Program 2 was loaded with bpf-jit=false; program 1 as the switch runs it.
    assert run.modes[2] == "interp", run.modes
    assert run.modes[1] == ("jit" if platform.machine() == "x86_64" else "interp"), run.modes
    assert run.paired is not None
    assert len(run.paired.values) == 1
    # The filter ran in every bpf configuration and passed the inside's SYNs.
    for name in ("monitor", "recirc", "one-pass", "recirc-interp", "traced", "topped"):
        assert run.prog[name]["runs"] > 0, lines
        assert run.prog[name]["pass"] > 0, lines
    assert run.prog["plain"]["runs"] == 0, lines
    report = (tmp_path / "datapath.md").read_text()
    assert "| ct(table) firewall |" in report
    assert "okopy trace attached costs at most 10% of the filtered rate" in report
    assert (tmp_path / "datapath.png").stat().st_size > 0


@pytest.mark.parametrize("io", ["dpdk", "afxdp"])
def test_datapath_smoke_over_the_generator(
    layout: Layout, ovs_tools: OvsTools, tmp_path: Path, io: str
) -> None:
    """--io dpdk (vhost-user ports) and --io afxdp (AF_XDP ports on veth):
    the project's DPDK generator against the switch's PMD thread; huge
    pages reserved for the run and given back, no namespace left."""
    before = NR_HUGEPAGES.read_text()
    ours = f"okopy-{os.getpid()}-"  # okopy.netns.unique_name()
    lines: list[str] = []
    run = datapath.run(layout, runs=1, seconds=0.3, log=lines.append, out_dir=tmp_path,
                       configs=("plain", "recirc", "one-pass"), io=io, flows=100)  # fmt: skip
    assert NR_HUGEPAGES.read_text() == before
    assert not [n for n in existing() if n.startswith(ours)]
    assert all(s.median > 0 for s in run.pps.values()), lines
    assert all(s.median > 0 for s in run.cycles.values()), lines
    assert run.prog["recirc"]["pass"] > 0, lines
    assert run.prog["one-pass"]["pass"] > 0, lines
    assert run.prog["plain"]["runs"] == 0, lines
    report = (tmp_path / f"datapath-{io}-100.md").read_text()
    assert "64-byte TCP SYNs over 100 flow(s)" in report
    assert f"`--io {io}`" in report
    assert json.loads((tmp_path / f"datapath-{io}-100.json").read_text())["flows"] == 100


def test_datapath_profile_over_dpdk(layout: Layout, ovs_tools: OvsTools) -> None:
    """--profile samples the PMD thread while the firewall runs: its native
    code, its maps and the vhost-user I/O all show."""
    lines: list[str] = []
    prof = profile.run(layout, "monitor", "dpdk", flows=1, seconds=1.0, log=lines.append)
    assert prof.thread.startswith("pmd"), prof.thread
    assert prof.pps > 0, lines
    assert prof.samples > 100, lines
    groups = prof.groups()
    for group in ("BPF program (native code)", "vhost-user I/O (DPDK)", "Open vSwitch datapath"):
        assert groups[group] > 0, lines
