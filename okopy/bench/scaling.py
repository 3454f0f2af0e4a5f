"""`okopy bench scaling`: a blocklist of N entries, enforced four ways.

For N blocked source addresses (none of which is the traffic's source, so
every rule is looked at), measure through the firewall namespace: packets
per second under a flood, round-trip time, and the time to add one entry
while traffic flows.  Variants:

- iptables (legacy and nf_tables backends): one rule per entry;
- nftables: one set with N elements;
- Open vSwitch flows: one flow per entry (the patched switch, no program);
- okopy: prefix_blocklist.c's LPM trie in the patched switch, entries
  written with ovs-ofctl update-bpf-map.
"""

from __future__ import annotations

import ipaddress
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okopy.bench.common import Sample, markdown_table, pyplot, write_report
from okopy.bench.netpath import NetPath
from okopy.bpf.toolchain import compile_program
from okopy.ofp.client import OfClient
from okopy.ofp.messages import MapDelete, MapDeleteReply, MapUpdate, MapUpdateReply
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import Layout

BLOCK_BASE = int(ipaddress.IPv4Address("100.64.0.0"))


def kernel_memory() -> int:
    """Bytes of kernel slab, vmalloc and per-CPU memory, machine-wide."""
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) * 1024 if rest.split() else 0
    return sum(fields.get(k, 0) for k in ("Slab", "VmallocUsed", "Percpu"))


def process_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def blocked(i: int) -> str:
    """The i-th blocked address: 100.64.0.0/10, never the traffic's source."""
    return str(ipaddress.IPv4Address(BLOCK_BASE + i))


class Variant:
    name = ""
    mode = "l3"
    # memory() before the entries were installed, set by setup().
    base_memory = 0

    def setup(self, path: NetPath, n: int) -> None:
        raise NotImplementedError

    def add_one(self, path: NetPath, i: int) -> None:
        raise NotImplementedError

    def remove_one(self, path: NetPath, i: int) -> None:
        raise NotImplementedError

    def add_one_connected(self, i: int) -> bool:
        """Add entry 'i' over a connection opened once, without starting a
        process; False if the variant has no such path here."""
        return False

    def remove_one_connected(self, i: int) -> bool:
        """Remove entry 'i' the same way; False if not supported."""
        return False

    def memory(self) -> int:
        """Bytes the variant's rules occupy now, with base_memory: the
        kernel's slab, vmalloc and per-CPU memory for kernel firewalls."""
        return kernel_memory()

    def use_reference(self, reference: bool) -> bool:
        """Switch traffic to a copy of the filter holding one entry (True)
        or back to the one with N (False), on the same switch, so that the
        two rates can be compared in one run; False if not supported."""
        return False

    def teardown(self, path: NetPath) -> None:
        """Namespaces are deleted by the caller; only processes here."""


class Iptables(Variant):
    def __init__(self, binary: str, label: str) -> None:
        self.binary = binary
        self.name = label

    def setup(self, path: NetPath, n: int) -> None:
        self.base_memory = self.memory()
        lines = ["*filter", ":FORWARD ACCEPT [0:0]"]
        lines += [f"-A FORWARD -s {blocked(i)}/32 -j DROP" for i in range(n)]
        lines.append("COMMIT\n")
        path.fw.run([f"{self.binary}-restore"], timeout=600, input_text="\n".join(lines))

    def add_one(self, path: NetPath, i: int) -> None:
        path.fw.run([self.binary, "-I", "FORWARD", "-s", f"{blocked(i)}/32", "-j", "DROP"])

    def remove_one(self, path: NetPath, i: int) -> None:
        path.fw.run([self.binary, "-D", "FORWARD", "-s", f"{blocked(i)}/32", "-j", "DROP"])


class Nftables(Variant):
    name = "nftables set"

    def setup(self, path: NetPath, n: int) -> None:
        self.base_memory = self.memory()
        elems = ", ".join(blocked(i) for i in range(n)) or ""
        ruleset = (
            "table inet okbench {\n"
            "  set blocked { type ipv4_addr; flags interval;"
            + (f" elements = {{ {elems} }};" if n else "")
            + " }\n"
            "  chain filter_forward { type filter hook forward priority 0; policy accept;\n"
            "    ip saddr @blocked drop\n  }\n}\n"
        )
        path.fw.run(["nft", "-f", "-"], timeout=600, input_text=ruleset)

    def add_one(self, path: NetPath, i: int) -> None:
        path.fw.run(["nft", "add", "element", "inet", "okbench", "blocked", f"{{ {blocked(i)} }}"])

    def remove_one(self, path: NetPath, i: int) -> None:
        path.fw.run(["nft", "delete", "element", "inet", "okbench", "blocked",
                     f"{{ {blocked(i)} }}"])  # fmt: skip


class OvsFlows(Variant):
    name = "OVS flows"
    mode = "l2"

    def __init__(self, tools: OvsTools) -> None:
        self.tools = tools
        self.switch: OvsInstance | None = None
        self.dir: tempfile.TemporaryDirectory[str] | None = None

    def setup(self, path: NetPath, n: int) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="okopy-bench-")
        self.switch = OvsInstance(self.tools, Path(self.dir.name), path.fw).start()
        self.switch.add_bridge("br0")
        self.switch.add_port("br0", "f0", 1)
        self.switch.add_port("br0", "f1", 2)
        self.base_memory = self.memory()
        flows = Path(self.dir.name) / "flows.txt"
        lines = [f"priority=100,ip,nw_src={blocked(i)},actions=drop" for i in range(n)]
        lines += ["priority=0,actions=NORMAL"]
        flows.write_text("\n".join(lines) + "\n")
        self.switch.ofctl("del-flows", "br0")
        self.switch.ofctl("add-flows", "br0", str(flows), timeout=600)

    def add_one(self, path: NetPath, i: int) -> None:
        assert self.switch is not None
        self.switch.ofctl("add-flow", "br0", f"priority=100,ip,nw_src={blocked(i)},actions=drop")

    def remove_one(self, path: NetPath, i: int) -> None:
        assert self.switch is not None
        self.switch.ofctl("--strict", "del-flows", "br0", f"priority=100,ip,nw_src={blocked(i)}")

    def memory(self) -> int:
        """ovs-vswitchd's resident memory."""
        assert self.switch is not None
        return process_rss(self.switch.pids["ovs-vswitchd"])

    def teardown(self, path: NetPath) -> None:
        if self.switch is not None:
            self.switch.stop()
        if self.dir is not None:
            self.dir.cleanup()


class OkopyLpm(OvsFlows):
    """prefix_blocklist.c in the patched switch: one LPM-trie entry each."""

    name = "okopy LPM trie"
    BATCH = 2500  # entries per ovs-ofctl call: one OpenFlow message is < 64 kB

    def __init__(self, tools: OvsTools, layout: Layout) -> None:
        super().__init__(tools)
        self.layout = layout
        self.client: OfClient | None = None

    @staticmethod
    def entry(i: int) -> list[str]:
        key = (32).to_bytes(4, "little") + ipaddress.IPv4Address(blocked(i)).packed
        value = (1).to_bytes(4, "little") + bytes(12)  # block = 1, hits = 0
        return [key.hex(), value.hex()]

    def setup(self, path: NetPath, n: int) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="okopy-bench-")
        self.switch = OvsInstance(self.tools, Path(self.dir.name), path.fw).start()
        sw = self.switch
        sw.add_bridge("br0")
        sw.add_port("br0", "f0", 1)
        sw.add_port("br0", "f1", 2)
        obj = compile_program(
            self.layout.repo / "bpf" / "prefix_blocklist.c", Path(self.dir.name) / "pb.o"
        )
        sw.ofctl("-O", "OpenFlow13", "load-bpf-prog", "br0", "1", str(obj), "name=blocklist")
        # The reference: the same object as program 2, whose own (unpinned)
        # map holds a single entry.
        sw.ofctl("-O", "OpenFlow13", "load-bpf-prog", "br0", "2", str(obj), "name=reference")
        sw.ofctl("-O", "OpenFlow13", "update-bpf-map", "br0", "2", "prefixes", *self.entry(0))
        self.base_memory = self.memory()
        for start in range(0, n, self.BATCH):
            args = [x for i in range(start, min(n, start + self.BATCH)) for x in self.entry(i)]
            sw.ofctl("-O", "OpenFlow13", "update-bpf-map", "br0", "1", "prefixes", *args,
                     timeout=600)  # fmt: skip
        sw.ofctl("del-flows", "br0")
        for flow in (
            "table=0,priority=100,ip,actions=bpf(prog=1,table=1)",
            "table=0,priority=0,actions=NORMAL",
            "table=1,priority=100,bpf_verdict=pass,actions=NORMAL",
            "table=1,priority=0,actions=drop",
        ):
            sw.ofctl("-O", "OpenFlow13", "add-flow", "br0", flow)
        # Opened here, so that timing an add does not include connecting.
        self.client = OfClient.bridge(sw.rundir, "br0")

    def add_one(self, path: NetPath, i: int) -> None:
        assert self.switch is not None
        self.switch.ofctl("-O", "OpenFlow13", "update-bpf-map", "br0", "1", "prefixes",
                          *self.entry(i))  # fmt: skip

    def remove_one(self, path: NetPath, i: int) -> None:
        assert self.switch is not None
        self.switch.ofctl("-O", "OpenFlow13", "del-bpf-map", "br0", "1", "prefixes",
                          self.entry(i)[0])  # fmt: skip

    def add_one_connected(self, i: int) -> bool:
        if self.client is None:
            return False
        key, value = (bytes.fromhex(x) for x in self.entry(i))
        reply = self.client.request(MapUpdate(1, "prefixes", len(key), len(value), 1, 0,
                                              (key,), (value,)))  # fmt: skip
        if not isinstance(reply, MapUpdateReply):
            raise RuntimeError(f"unexpected reply to a map update: {reply}")
        return True

    def remove_one_connected(self, i: int) -> bool:
        if self.client is None:
            return False
        key, value = (bytes.fromhex(x) for x in self.entry(i))
        reply = self.client.request(MapDelete(1, "prefixes", len(key), len(value), 1, 0, (key,)))
        if not isinstance(reply, MapDeleteReply):
            raise RuntimeError(f"unexpected reply to a map delete: {reply}")
        return True

    def use_reference(self, reference: bool) -> bool:
        assert self.switch is not None
        prog = 2 if reference else 1
        self.switch.ofctl("-O", "OpenFlow13", "mod-flows", "br0",
                          f"table=0,ip,actions=bpf(prog={prog},table=1)")  # fmt: skip
        time.sleep(0.5)  # the revalidators move the cached flows over
        return True

    def teardown(self, path: NetPath) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        super().teardown(path)


@dataclass
class Result:
    variant: str
    n: int
    pps: Sample
    rtt_ms: float
    add_ms: Sample
    setup_s: float
    # Adds over a connection kept open (okopy only), and the ping flood's
    # loss while entries were added.
    add_connected_ms: Sample = field(default_factory=lambda: Sample(()))
    add_loss: Sample = field(default_factory=lambda: Sample(()))
    # Per run: the rate at N over the rate of the one-entry reference
    # measured right after it on the same switch (okopy only).
    vs_reference: Sample = field(default_factory=lambda: Sample(()))
    remove_ms: Sample = field(default_factory=lambda: Sample(()))
    remove_connected_ms: Sample = field(default_factory=lambda: Sample(()))
    memory_bytes: int = 0
    note: str = ""


@dataclass
class ScalingRun:
    sizes: Sequence[int]
    runs: int
    seconds: float
    results: list[Result] = field(default_factory=list)


def variants(layout: Layout) -> list[Variant]:
    return [
        Iptables("iptables-legacy", "iptables (legacy)"),
        Iptables("iptables-nft", "iptables (nf_tables)"),
        Nftables(),
        OvsFlows(OvsTools.from_layout(layout)),
        OkopyLpm(OvsTools.from_layout(layout), layout),
    ]


def measure(v: Variant, n: int, runs: int, seconds: float, log: Callable[[str], None]) -> Result:
    path = NetPath(v.mode)  # type: ignore[arg-type]
    try:
        start = time.monotonic()
        v.setup(path, n)
        setup_s = time.monotonic() - start
        memory = v.memory() - v.base_memory
        path.resolve()
        rtt = path.rtt_ms()
        pps = []
        adds = []
        connected: list[float] = []
        removes: list[float] = []
        removes_connected: list[float] = []
        losses = []
        ref: list[float] = []
        for r in range(runs):
            # The reference, where there is one, goes first in every other
            # run, so that neither side always follows the adds below.
            if r % 2 and v.use_reference(True):
                ref.append(path.blast(seconds))
                v.use_reference(False)
            pps.append(path.blast(seconds))
            if not r % 2 and v.use_reference(True):
                ref.append(path.blast(seconds))
                v.use_reference(False)
            # Add entries while a ping flood crosses the firewall: how long
            # one add takes, and whether the flood lost packets meanwhile.
            flood = subprocess.Popen(
                path.gen.argv(["timeout", "-s", "INT", "1", "ping", "-f", "-q", path.sink_ip]),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            time.sleep(0.2)
            t = time.perf_counter()
            v.add_one(path, n + r)
            adds.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            v.remove_one(path, n + r)
            removes.append((time.perf_counter() - t) * 1000)
            for k in range(CONNECTED_ADDS):
                i = n + runs + r * CONNECTED_ADDS + k
                t = time.perf_counter()
                if not v.add_one_connected(i):
                    break
                connected.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                v.remove_one_connected(i)
                removes_connected.append((time.perf_counter() - t) * 1000)
            out, _ = flood.communicate(timeout=30)
            loss = _ping_loss(out)
            if loss is not None:
                losses.append(loss)
        res = Result(v.name, n, Sample(tuple(pps)), rtt, Sample(tuple(adds)), setup_s,
                     Sample(tuple(connected)), Sample(tuple(losses)),
                     Sample(tuple(a / b for a, b in zip(pps, ref, strict=False) if b)),
                     Sample(tuple(removes)), Sample(tuple(removes_connected)), memory)  # fmt: skip
        conn = f" (connected {res.add_connected_ms.fmt(' ms', 3)})" if connected else ""
        if ref:
            conn += f"  vs 1 entry {res.vs_reference.fmt('', 3)}"
        log(f"  {v.name:<22} N={n:<7} {res.pps.fmt(' pps')}  rtt {rtt:.3f} ms  "
            f"add {res.add_ms.fmt(' ms', 1)}{conn}  remove {res.remove_ms.fmt(' ms', 1)}  "
            f"flood loss {res.add_loss.fmt('%', 1)}  memory {memory / 2**20:.1f} MiB  "
            f"setup {setup_s:.1f} s")  # fmt: skip
        return res
    finally:
        v.teardown(path)
        path.delete()


CONNECTED_ADDS = 20
HEADER = ["variant", "N", "pps (median, min-max)", "ratio", "vs 1 entry", "RTT ms", "add ms",
          "remove ms", "connected add ms", "connected remove ms", "flood loss", "memory MiB",
          "setup s"]  # fmt: skip


def _ping_loss(out: str) -> float | None:
    """The loss in percent from ping's summary line, if it printed one."""
    for line in out.splitlines():
        if "packets transmitted" in line and "% packet loss" in line:
            return float(line.split("% packet loss")[0].split()[-1])
    return None


def run(
    layout: Layout,
    sizes: Sequence[int] = (1, 1000, 10000, 100000),
    runs: int = 3,
    seconds: float = 2.0,
    log: Callable[[str], None] = print,
    out_dir: Path | None = None,
) -> ScalingRun:
    result = ScalingRun(sizes, runs, seconds)
    base = NetPath("l3")
    try:
        base.resolve()
        baseline = Sample(tuple(base.blast(seconds) for _ in range(runs)))
    finally:
        base.delete()
    log(f"baseline: kernel forwarding with no rules {baseline.fmt(' pps')}")
    for v in variants(layout):
        for n in sizes:
            result.results.append(measure(v, n, runs, seconds, log))
    report_dir = out_dir or layout.repo / "docs" / "benchmarks"
    lines = _report(result, baseline)
    data: dict[str, Any] = {
        "baseline_pps": baseline.values,
        "results": [
            {"variant": r.variant, "n": r.n, "pps": r.pps.values, "rtt_ms": r.rtt_ms,
             "add_ms": r.add_ms.values, "add_connected_ms": r.add_connected_ms.values,
             "add_flood_loss_pct": r.add_loss.values, "vs_reference": r.vs_reference.values,
             "remove_ms": r.remove_ms.values, "remove_connected_ms": r.remove_connected_ms.values,
             "memory_bytes": r.memory_bytes, "setup_s": r.setup_s}
            for r in result.results
        ],
    }  # fmt: skip
    md = write_report(report_dir, "scaling", lines, data)
    plot(data, md.with_suffix(".png"))
    log(f"report: {md}")
    return result


def _report(run_: ScalingRun, baseline: Sample) -> list[str]:
    rows = []
    for r in run_.results:
        ratio = r.pps.median / baseline.median if baseline.median else float("nan")
        conn = r.add_connected_ms.fmt(digits=3)
        conn_rm = r.remove_connected_ms.fmt(digits=3)
        vs = r.vs_reference.fmt(digits=3)
        rows.append([r.variant, r.n, r.pps.fmt(), f"{ratio:.2f}", vs, f"{r.rtt_ms:.3f}",
                     r.add_ms.fmt(digits=2), r.remove_ms.fmt(digits=2), conn, conn_rm,
                     r.add_loss.fmt("%", 1), f"{r.memory_bytes / 2**20:.1f}",
                     f"{r.setup_s:.1f}"])  # fmt: skip
    return [
        "## Method",
        "",
        f"Three network namespaces, gen -> fw -> sink, joined by veth.  trafgen floods "
        f"64-byte UDP from gen for {run_.seconds} s per run ({run_.runs} runs: median, "
        "min-max); the throughput is what sink received per second.  The blocklist holds N "
        "addresses of 100.64.0.0/10, none of them the traffic's source, so every rule is "
        "considered.  RTT: ping through the firewall without load.  Add: wall time of adding "
        "one entry with the variant's own tool (iptables, nft, ovs-ofctl: process start "
        "included) while a ping flood runs.  Connected add (okopy only): one map update "
        "over an OpenFlow connection opened once, from sending the request to the switch's "
        f"reply, {CONNECTED_ADDS} per run.  vs 1 entry (okopy only): in each run, the rate "
        "at N divided by the rate of the same object loaded a second time with one entry, "
        "measured right after on the same switch (flows switched with mod-flows), so that "
        "drift on the machine cancels.  Remove: the same for deleting the entry just added.  "
        "Memory: growth of ovs-vswitchd's resident set from before the entries were installed "
        "(OVS variants), or of the kernel's slab + vmalloc + per-CPU memory (kernel "
        "firewalls; machine-wide, so approximate).  Flood loss: what the ping flood lost while the "
        "entries were added.  The ratio is against plain kernel forwarding measured in the "
        "same run.",
        "",
        f"Baseline (kernel forwarding, no rules): {baseline.fmt(' pps')}.",
        "",
        *markdown_table(
            HEADER,
            rows,
        ),
        "",
        "Limits on this 2-core machine: generator, forwarder and sink share the two cores; "
        "veth costs dominate small packets; the userspace switch forwards through AF_PACKET, "
        "so its absolute rate is far below the kernel's whatever the rules.",
    ]


def plot(data: dict[str, Any], path: Path) -> None:
    """Throughput and time to add one entry against N, per variant, from the
    report's data (scaling.json)."""
    plt = pyplot()
    if plt is None:
        return
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in data["results"]:
        by_variant.setdefault(r["variant"], []).append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, unsorted in by_variant.items():
        rs = sorted(unsorted, key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        ax1.plot(ns, [statistics.median(r["pps"]) for r in rs], marker="o", label=name)
        ax2.plot(ns, [statistics.median(r["add_ms"]) for r in rs], marker="o", label=name)
        if any(r.get("add_connected_ms") for r in rs):
            ax2.plot(ns, [statistics.median(r["add_connected_ms"]) for r in rs], marker="s",
                     linestyle="--", label=f"{name}, kept connection")  # fmt: skip
    if data.get("baseline_pps"):
        ax1.axhline(statistics.median(data["baseline_pps"]), color="grey", linestyle=":",
                    label="kernel forwarding, no rules")  # fmt: skip
    for ax, ylabel in ((ax1, "packets/s received"), (ax2, "ms to add one entry")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entries in the blocklist (N)")
        ax.set_ylabel(ylabel)
    ax1.set_title("Throughput under a 64-byte UDP flood")
    ax2.set_title("Adding one entry while traffic flows")
    ax2.legend(fontsize=7)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
