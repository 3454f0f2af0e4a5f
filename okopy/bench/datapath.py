"""`okopy bench datapath`: what a bpf() action costs in the switch's datapath.

One patched ovs-vswitchd (datapath_type=netdev) forwards between two veth
ports, gen (inside, port 1) -> fw -> sink (outside, port 2), which it
reads through AF_PACKET (`--io afpacket`, on its main thread).  With
`--io dpdk` the ports are DPDK vhost-user ports and the project's own DPDK
generator sends and counts instead (okopy/bench/dpdkpath.py), over
`--flows` connections.  trafgen
floods 54-byte TCP SYNs cycling over 256 source ports, so every packet is
a connection a stateful firewall has to look up; the throughput is what
sink's interface received per second.  The flow tables, replaced between
measurements on the same switch:

- plain:   output to the other port;
- monitor: bpf(prog=1) then output: tcp_firewall.c runs, its verdict is
  ignored (side effects only, no recirculation);
- recirc:  bpf(prog=1,table=1), then bpf_verdict=pass -> output in table 1
  (the firewall's verdict decides; one recirculation per packet);
- one-pass: bpf(prog=1,drop_unless=pass) then output: the firewall's
  verdict decides in the same datapath pass (the datapath drops what it
  does not pass), no recirculation;
- recirc-interp: the same as recirc with program 2, the same object loaded with
  other_config:bpf-jit=false, so that it runs in libokovm's interpreter
  (program 1 runs as native code where libokovm has a JIT);
- ct:      the same policy with Open vSwitch's userspace conntrack:
  ct(table=1), +new from the inside -> ct(commit), +est -> output.

With `--trace`, three more measure what tracing costs (okopy/trace):
- traced:  recirc with `okopy trace` attached (its default rate cap;
  output thrown away): the switch times the runs of, and fires
  okopy:bpf_batch for, at most bpf-trace-rate (10000) batches a second;
- topped:  recirc with `okopy top` attached;
- no-usdt: recirc on a second switch built without USDT probes (the
  `no-usdt` build flavor, built on demand), on its own veth path: what
  the probes cost when nothing is attached.

Rounds interleave the configurations, each round starting one
configuration later, so that drift on a shared machine hits them all
alike; each figure is the median over the rounds with the
spread, and ratios are against plain forwarding in the same run.  The
recirculating firewall and ct() are also compared round by round (the
median of the per-round ratios), which cancels drift between rounds.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okopy.bench.common import Sample, markdown_table, pyplot, write_report
from okopy.bench.dpdkpath import DpdkPath
from okopy.bench.netpath import NetPath
from okopy.bpf import vm
from okopy.bpf.kernel import KernelError, KernelProgram
from okopy.bpf.toolchain import compile_program
from okopy.ovs import build as ovs_build
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import Layout
from okopy.traffic import packets

# Nobody has this address: sink's kernel counts the SYNs and drops them
# without answering, so only the flood crosses the switch.
FLOOD_DST = "10.9.1.3"
INSIDE, OUTSIDE = 1, 2

_ARP = [
    "table=0,priority=10,arp,in_port=1,actions=output:2",
    "table=0,priority=10,arp,in_port=2,actions=output:1",
]

CONFIGS: dict[str, list[str]] = {
    "plain": [
        "table=0,priority=100,in_port=1,actions=output:2",
        "table=0,priority=100,in_port=2,actions=output:1",
    ],
    "monitor": [
        *_ARP,
        "table=0,priority=100,ip,in_port=1,actions=bpf(prog=1),output:2",
        "table=0,priority=100,ip,in_port=2,actions=bpf(prog=1),output:1",
    ],
    "recirc": [
        *_ARP,
        "table=0,priority=100,ip,actions=bpf(prog=1,table=1)",
        "table=1,priority=100,bpf_verdict=pass,in_port=1,actions=output:2",
        "table=1,priority=100,bpf_verdict=pass,in_port=2,actions=output:1",
        "table=1,priority=0,actions=drop",
    ],
    "one-pass": [
        *_ARP,
        "table=0,priority=100,ip,in_port=1,actions=bpf(prog=1,drop_unless=pass),output:2",
        "table=0,priority=100,ip,in_port=2,actions=bpf(prog=1,drop_unless=pass),output:1",
    ],
    "recirc-interp": [
        *_ARP,
        "table=0,priority=100,ip,actions=bpf(prog=2,table=1)",
        "table=1,priority=100,bpf_verdict=pass,in_port=1,actions=output:2",
        "table=1,priority=100,bpf_verdict=pass,in_port=2,actions=output:1",
        "table=1,priority=0,actions=drop",
    ],
    "traced": [],  # recirc's, with a tracer (TRACERS)
    "topped": [],
    "no-usdt": [],  # recirc's, on the switch built without probes
    "ct": [
        *_ARP,
        "table=0,priority=100,ip,actions=ct(table=1)",
        "table=1,priority=100,ip,ct_state=+trk+new,in_port=1,actions=ct(commit),output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=2,actions=output:1",
        "table=1,priority=0,actions=drop",
    ],
}

for _name in ("traced", "topped", "no-usdt"):
    CONFIGS[_name] = CONFIGS["recirc"]
# The command attached while a configuration is measured.
TRACERS = {
    "traced": ("trace", "--json"),
    "topped": ("top", "--json", "--interval", "1"),
}
TRACE_CONFIGS = ("traced", "topped", "no-usdt")

DESCRIPTIONS = {
    "plain": "plain forwarding (output)",
    "monitor": "bpf(prog) monitor + output",
    "recirc": "bpf(prog,table) + bpf_verdict",
    "one-pass": "bpf(prog,drop_unless=pass) + output",
    "recirc-interp": "bpf(prog,table), interpreter",
    "ct": "ct(table) firewall",
    "traced": "recirc, okopy trace attached",
    "topped": "recirc, okopy top attached",
    "no-usdt": "recirc, switch without USDT probes",
}
# The program each configuration runs; the others run none (their counters
# are read from program 1, to show that it did not run).
PROGRAM = {"monitor": 1, "recirc": 1, "one-pass": 1, "recirc-interp": 2, "traced": 1,
           "topped": 1, "no-usdt": 1}  # fmt: skip
DEFAULT_CONFIGS = ("plain", "monitor", "recirc", "one-pass", "recirc-interp", "ct")


@dataclass
class DatapathRun:
    runs: int
    seconds: float
    io: str = "afpacket"
    flows: int = 256
    pps: dict[str, Sample] = field(default_factory=dict)
    rtt_ms: dict[str, Sample] = field(default_factory=dict)
    # The switch's processing cycles per packet (pmd-stats-show).
    cycles: dict[str, Sample] = field(default_factory=dict)
    # Per configuration, the filter's counters over its floods (and pings).
    prog: dict[str, dict[str, int]] = field(default_factory=dict)
    # How each loaded program runs in the switch ("jit", "interp", ...).
    modes: dict[int, str] = field(default_factory=dict)
    # Per round, recirc's rate over ct()'s (rounds where both ran).
    paired: Sample | None = None
    # The filter alone on the generator's SYN, ns per run (filter_cost()).
    filter_ns: dict[str, float] = field(default_factory=dict)
    # The switch's cycle counter (the TSC) in MHz, to read cycles as ns.
    tsc_mhz: float = float("nan")
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def added_ns(self, name: str, base: str = "plain") -> float:
        """What configuration 'name' adds to 'base' per packet in the switch,
        in ns: the median over the rounds of the difference in cycles per
        packet within each round (which cancels drift between rounds), at
        the TSC's rate; NaN if unknown."""
        if name not in self.cycles or base not in self.cycles or not self.tsc_mhz > 0:
            return float("nan")
        pairs = zip(self.cycles[name].values, self.cycles[base].values, strict=True)
        return statistics.median(a - b for a, b in pairs) * 1000 / self.tsc_mhz

    def per_round(self, name: str, base: str) -> Sample | None:
        """The rate of 'name' over that of 'base', round by round (each
        round measures both within a minute, which cancels most of the
        drift between rounds); None unless both ran."""
        if name not in self.pps or base not in self.pps:
            return None
        pairs = zip(self.pps[name].values, self.pps[base].values, strict=True)
        ratios = tuple(a / b for a, b in pairs if b)
        return Sample(ratios) if ratios else None

    def ratio(self, name: str, base: str = "plain") -> float:
        b = self.pps[base].median
        return self.pps[name].median / b if b else float("nan")


# How the switch reads its two ports: veth through AF_PACKET (trafgen
# floods, the main thread forwards), or, with the project's DPDK generator
# (okopy/bench/dpdkpath.py) and a PMD thread: DPDK vhost-user ports, or
# AF_XDP ports on veth.  (trafgen flooding a veth whose peer is an afxdp
# port hung in the kernel, unkillable for 30 s, in two of two fresh-clone
# CI runs; the generator's own AF_XDP sockets on the peers do not.)
IO_TYPES = ("afpacket", "dpdk", "afxdp")
GENERATOR_IO = ("dpdk", "afxdp")


class Bench:
    """The traffic path, the switch and the program; flows set per config."""

    def __init__(
        self, layout: Layout, io: str = "afpacket", flows: int = 1, tools: OvsTools | None = None
    ) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="okopy-bench-")
        self.path: NetPath | None = None
        self.dpdk: DpdkPath | None = None
        self.switch: OvsInstance | None = None
        try:
            if io in GENERATOR_IO:
                self.dpdk = DpdkPath(layout, Path(self.dir.name), flows, FLOOD_DST, io)
                sw = self.switch = self.dpdk.switch
                assert sw is not None
            else:
                self.path = NetPath("l2")
                tools = tools or OvsTools.from_layout(layout)
                sw = self.switch = OvsInstance(tools, Path(self.dir.name), self.path.fw).start()
                sw.add_bridge("br0")
                sw.add_port("br0", "f0", INSIDE, io)
                sw.add_port("br0", "f1", OUTSIDE, io)
            obj = self.obj = compile_program(
                layout.repo / "bpf" / "tcp_firewall.c", Path(self.dir.name) / "fw.o"
            )
            # Program 1 as the switch runs it by default (native code where
            # libokovm has a JIT), program 2 in the interpreter.
            self.ofctl("load-bpf-prog", "br0", "1", str(obj), "name=tcp_firewall")
            sw.vsctl("set", "Open_vSwitch", ".", "other_config:bpf-jit=false")
            self.ofctl("load-bpf-prog", "br0", "2", str(obj), "name=tcp_firewall")
            sw.vsctl("remove", "Open_vSwitch", ".", "other_config", "bpf-jit")
            # inside_ports[1] = 1: port 1 faces the inside.
            key, mark = INSIDE.to_bytes(4, "little").hex(), (1).to_bytes(4, "little").hex()
            for prog in ("1", "2"):
                self.ofctl("update-bpf-map", "br0", prog, "inside_ports", key, mark)
        except BaseException:
            self.close()
            raise

    def flood(self, seconds: float) -> float:
        """SYNs from the inside for 'seconds'; packets per second forwarded."""
        if self.dpdk is not None:
            return self.dpdk.blast(seconds)
        assert self.path is not None
        return self.path.blast(seconds, self.path.tcp_syn_config(FLOOD_DST))

    def rtt_ms(self) -> float:
        if self.dpdk is not None:
            return self.dpdk.rtt_ms()
        assert self.path is not None
        return self.path.rtt_ms(count=10)

    def clear_pmd_stats(self) -> None:
        assert self.switch is not None
        self.switch.appctl("ovs-vswitchd", "dpif-netdev/pmd-stats-clear")

    def cycles_per_packet(self) -> float:
        """Since clear_pmd_stats(): the processing cycles per packet of the
        thread that received the most packets."""
        assert self.switch is not None
        return busiest_thread_cycles(
            self.switch.appctl("ovs-vswitchd", "dpif-netdev/pmd-stats-show")
        )

    def ofctl(self, *args: str) -> str:
        assert self.switch is not None
        return self.switch.ofctl("-O", "OpenFlow13", *args)

    def configure(self, name: str) -> None:
        flows = Path(self.dir.name) / "flows.txt"
        flows.write_text("\n".join(CONFIGS[name]) + "\n")
        self.ofctl("replace-flows", "br0", str(flows))
        # ct() leaves a connection per flow, which conntrack's cleanup thread
        # would expire while the next configuration is measured, on a core
        # that the generator needs: end them now.
        assert self.switch is not None
        self.switch.appctl("ovs-vswitchd", "dpctl/flush-conntrack")
        # The revalidators replace the cached datapath flows; a short warm-up
        # flood makes the measurement start on the new ones.
        time.sleep(0.5)
        self.flood(0.3)

    @contextlib.contextmanager
    def tracer(self, name: str) -> Iterator[None]:
        """With TRACERS[name] attached to the switch (nothing for other
        configurations); its output is thrown away."""
        if name not in TRACERS:
            yield
            return
        assert self.switch is not None
        pid = str(self.switch.pids["ovs-vswitchd"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "okopy", *TRACERS[name], "--pid", pid],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            if "attached" not in line:
                raise RuntimeError(f"okopy {TRACERS[name][0]} did not attach: {line}"
                                   f"{proc.stderr.read()}")  # fmt: skip
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def prog_stats(self, prog: int) -> dict[str, int]:
        """A program's counters from dump-bpf-progs: runs, run_nsec, pass, ..."""
        out = self.ofctl("dump-bpf-progs", "br0", str(prog))
        words = (w.split("=", 1) for w in out.split() if "=" in w)
        return {k: int(v) for k, v in words if v.isdigit()}

    def prog_mode(self, prog: int) -> str:
        """How the switch runs a program: "jit", "interp" or "sandbox"."""
        out = self.ofctl("dump-bpf-progs", "br0", str(prog))
        return next((w.split("=", 1)[1] for w in out.split() if w.startswith("mode=")), "?")

    def close(self) -> None:
        if self.dpdk is not None:
            self.dpdk.delete()  # its switch too
        else:
            if self.switch is not None:
                self.switch.stop()
            if self.path is not None:
                self.path.delete()
        self.dir.cleanup()


def generator_syn() -> bytes:
    """The first frame bench/dpdk-gen.c sends (without the FCS): a TCP SYN
    from 10.8.0.0 port 1024 to FLOOD_DST port 80, padded to 60 bytes."""
    frame = packets.tcp4("10.8.0.0", FLOOD_DST, 1024, 80, seq=1, window=65535)
    return frame + bytes(max(0, 60 - len(frame)))


def filter_cost(obj: Path, repeat: int = 200_000) -> dict[str, float]:
    """ns per run of the firewall object on generator_syn() from an inside
    port, its connection already in the map (a first run adds it), as the
    switch runs it for one flow: "libokovm" (its JIT, in this process,
    okovm_prog_bench: statistics included, no datapath around it) and
    "kernel" (the kernel's XDP JIT, BPF_PROG_TEST_RUN with 'repeat'; the
    loopback device is the ingress port); NaN where one cannot run."""
    pkt, mark = generator_syn(), (1).to_bytes(4, "little")
    elf = obj.read_bytes()
    out = {"libokovm": float("nan"), "kernel": float("nan")}
    prog = vm.Namespace("bench-filter-cost").load(elf, jit=True)
    prog.map("inside_ports").update(INSIDE.to_bytes(4, "little"), mark)
    prog.run(pkt, INSIDE)
    out["libokovm"] = prog.bench(pkt, repeat, INSIDE)
    try:
        with KernelProgram(elf) as k:
            k.maps["inside_ports"].update((1).to_bytes(4, "little"), mark)
            k.run(pkt)
            out["kernel"] = k.run(pkt, repeat=repeat).duration_ns
    except KernelError:
        pass
    return out


def tsc_mhz() -> float:
    """The CPU's nominal MHz (/proc/cpuinfo), which a constant TSC runs at."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return float("nan")
    found = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    return float(found.group(1)) if found else float("nan")


def busiest_thread_cycles(stats: str) -> float:
    """From `dpif-netdev/pmd-stats-show`: the average processing cycles per
    packet of the thread (PMD or main) that received the most packets; NaN
    when no thread received any."""
    best, cycles = 0, float("nan")
    for block in re.split(r"\n(?=\S)", stats):
        got = re.search(r"packets received: (\d+)", block)
        avg = re.search(r"avg processing cycles per packet: ([\d.]+)", block)
        if got and avg and int(got.group(1)) > best:
            best, cycles = int(got.group(1)), float(avg.group(1))
    return cycles


def run(
    layout: Layout,
    runs: int = 5,
    seconds: float = 3.0,
    configs: Sequence[str] = DEFAULT_CONFIGS,
    log: Callable[[str], None] = print,
    out_dir: Path | None = None,
    io: str = "afpacket",
    flows: int = 1,
) -> DatapathRun:
    """Measure 'configs'; the report is docs/benchmarks/datapath.md for
    `afpacket` ports, datapath-IO.md for the others (datapath-dpdk-FLOWS.md
    for dpdk, whose generator sends over 'flows' connections)."""
    if io not in IO_TYPES:
        raise ValueError(f"--io {io!r}: one of {', '.join(IO_TYPES)}")
    if "no-usdt" in configs and io != "afpacket":
        # A second DPDK switch would poll on the first one's core.
        log("no-usdt is measured with --io afpacket only: left out")
        configs = tuple(c for c in configs if c != "no-usdt")
    result = DatapathRun(runs, seconds, io, flows if io in GENERATOR_IO else 256)
    pps: dict[str, list[float]] = {c: [] for c in configs}
    rtt: dict[str, list[float]] = {c: [] for c in configs}
    cycles: dict[str, list[float]] = {c: [] for c in configs}
    baseline: Bench | None = None
    if "no-usdt" in configs:
        log("building Open vSwitch without USDT probes (flavor no-usdt) if needed")
        ovs_build.build(layout, flavor=ovs_build.NO_USDT, log=log)
        flavor_dir = ovs_build.NO_USDT.build_dir(layout)
        baseline = Bench(layout, io, flows, OvsTools(flavor_dir, layout.ovs_src))
    bench = Bench(layout, io, flows)
    benches = {name: baseline if name == "no-usdt" and baseline else bench for name in configs}
    try:
        result.modes = {p: bench.prog_mode(p) for p in (1, 2)}
        log("programs: " + ", ".join(f"{p} runs as {m}" for p, m in result.modes.items()))
        for r in range(runs):
            # Each round starts one configuration later, so that none is
            # always measured right after the same other one (whose
            # leftovers, such as datapath flows being revalidated, it would
            # otherwise always inherit).
            for name in (*configs[r % len(configs) :], *configs[: r % len(configs)]):
                b = benches[name]
                b.configure(name)
                rtt[name].append(b.rtt_ms())
                prog = PROGRAM.get(name, 1)
                before = b.prog_stats(prog)
                with b.tracer(name):
                    b.clear_pmd_stats()
                    pps[name].append(b.flood(seconds))
                    cycles[name].append(b.cycles_per_packet())
                after = b.prog_stats(prog)
                delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                tally = result.prog.setdefault(name, {})
                for k in ("runs", "run_nsec", "pass", "drop"):
                    tally[k] = tally.get(k, 0) + delta.get(k, 0)
                log(f"  round {r + 1}/{runs} {name:<13} {pps[name][-1]:>9.0f} pps  "
                    f"{cycles[name][-1]:.0f} cycles/packet  rtt {rtt[name][-1]:.3f} ms  "
                    f"filter runs {delta.get('runs', 0)}")  # fmt: skip
        result.filter_ns = filter_cost(bench.obj)
        result.tsc_mhz = tsc_mhz()
        log("the filter alone, ns per run: " + ", ".join(
            f"{k} {v:.1f}" for k, v in result.filter_ns.items()))  # fmt: skip
    finally:
        bench.close()
        if baseline is not None:
            baseline.close()
    result.pps = {c: Sample(tuple(v)) for c, v in pps.items()}
    result.rtt_ms = {c: Sample(tuple(v)) for c, v in rtt.items()}
    result.cycles = {c: Sample(tuple(v)) for c, v in cycles.items()}
    if "recirc" in pps and "ct" in pps:
        pairs = [a / b for a, b in zip(pps["recirc"], pps["ct"], strict=True) if b]
        result.paired = Sample(tuple(pairs)) if pairs else None
    result.checks = _checks(result)
    for what, ok, detail in result.checks:
        log(f"{'met' if ok else 'MISSED'}: {what} ({detail})")
    data: dict[str, Any] = {
        "io": io,
        "flows": result.flows,
        "runs": runs,
        "seconds": seconds,
        "pps": {c: s.values for c, s in result.pps.items()},
        "rtt_ms": {c: s.values for c, s in result.rtt_ms.items()},
        "cycles_per_packet": {c: s.values for c, s in result.cycles.items()},
        "prog": result.prog,
        "modes": {str(p): m for p, m in result.modes.items()},
        "filter_ns": result.filter_ns,
        "tsc_mhz": result.tsc_mhz,
    }
    suite = "datapath" if io == "afpacket" else f"datapath-{io}-{flows}"
    md = write_report(out_dir or layout.repo / "docs" / "benchmarks", suite,
                      _report(result), data)  # fmt: skip
    _plot(result, md.with_suffix(".png"))
    log(f"report: {md}")
    return result


def _checks(r: DatapathRun) -> list[tuple[str, bool, str]]:
    out = []
    if "monitor" in r.pps and "plain" in r.pps:
        m = r.ratio("monitor")
        out.append(("monitor keeps >= 90% of plain forwarding", m >= 0.9, f"{m:.0%}"))
    for fw in ("recirc", "one-pass"):
        if fw in r.pps and "plain" in r.pps:
            c = r.ratio(fw)
            out.append((f"{fw} keeps >= 80% of plain forwarding", c >= 0.8, f"{c:.0%}"))
    if "recirc" in r.pps and "ct" in r.pps:
        rc, ct = r.pps["recirc"].median, r.pps["ct"].median
        detail = f"{rc:.0f} vs {ct:.0f} pps, {rc / ct - 1:+.1%}" if ct else "no ct() rate"
        lo, hi = r.pps["recirc"].spread
        if rc < ct and lo <= ct <= hi:
            detail += "; within recirc's own run-to-run spread"
        if r.paired is not None:
            plo, phi = r.paired.spread
            detail += (f"; round by round recirc / ct() = {r.paired.median:.3f} "
                       f"(min {plo:.3f}, max {phi:.3f})")  # fmt: skip
        out.append(("recirc at least 1.3x the ct() firewall's rate", rc >= 1.3 * ct, detail))
    probes = r.per_round("recirc", "no-usdt")
    if probes is not None:
        lo, hi = probes.spread
        out.append(("USDT probes cost nothing measurable with no tracer attached",
                    probes.median >= 0.97 or lo <= 1.0 <= hi,
                    f"recirc with probes / without, round by round: median {probes.median:.3f} "
                    f"(min {lo:.3f}, max {hi:.3f})"))  # fmt: skip
    for traced, what in (("traced", "okopy trace"), ("topped", "okopy top")):
        t = r.per_round(traced, "recirc")
        if t is None:
            continue
        detail = f"{traced} / recirc, round by round: median {t.median:.3f} "
        detail += f"(min {t.spread[0]:.3f}, max {t.spread[1]:.3f})"
        added = r.added_ns(traced, "recirc")
        if not math.isnan(added):  # the switch's cycles are known
            detail += f"; {added:.1f} ns more per packet in the switch"
        out.append((f"{what} attached costs at most 10% of the filtered rate", t.median >= 0.9,
                    detail))  # fmt: skip
    kernel = r.filter_ns.get("kernel", float("nan"))
    added = r.added_ns("monitor")
    # Only one flow is the traffic that filter_cost() repeats; with more,
    # the switch's map lookups miss the caches and the two differ in kind.
    # Only DPDK ports: over AF_XDP on veth the PMD thread's cycles are
    # mostly the kernel's sendto() and vary between rounds by more than
    # the filter costs.
    if r.io == "dpdk" and r.flows == 1 and kernel > 0 and added > 0:
        out.append(("the filter's cost in the switch within 1.2x of the kernel's XDP JIT",
                    added <= 1.2 * kernel,
                    f"monitor - plain {added:.1f} ns vs kernel {kernel:.1f} ns per packet, "
                    f"{added / kernel:.2f}x"))  # fmt: skip
    return out


def _method(r: DatapathRun) -> str:
    """How the traffic was made and counted, for the report."""
    if r.io == "dpdk":
        return (
            "The patched ovs-vswitchd with DPDK (`--io dpdk`; its PMD thread on core 1) "
            "forwards between two vhost-user client ports, port 1 (inside) to port 2.  The "
            "project's own generator (`bench/dpdk-gen.c`, one lcore on core 0, two "
            "`net_virtio_user` ports as the vhost-user servers) sends 64-byte TCP SYNs over "
            f"{r.flows} flow(s) (source address and port vary) into port 1 as fast as the "
            "port takes them and counts what comes back from port 2; each measurement is a "
            f"0.5 s warm-up, then {r.seconds} s counted.  Huge pages are reserved for the run "
            "and given back.  "
        )
    if r.io == "afxdp":
        return (
            "The patched ovs-vswitchd (`--io afxdp`; no DPDK, its PMD thread on core 1) "
            "forwards between two AF_XDP ports (`type=afxdp`, `xdp-mode=native`: their XDP "
            "programs run in veth's driver), port 1 (inside) to port 2, each on a veth end.  "
            "The project's own generator (`bench/dpdk-gen.c`, one lcore on core 0) runs in "
            "a namespace of its own on the two peers through DPDK's `net_af_xdp` and sends "
            f"64-byte TCP SYNs over {r.flows} flow(s) (source address and port vary) into "
            "port 1 as fast as it takes them, counting what comes back from port 2; each "
            f"measurement is a 0.5 s warm-up, then {r.seconds} s counted.  Huge pages are "
            "reserved for the generator and given back.  "
        )
    return (
        "Three network namespaces, gen -> fw -> sink, joined by veth (tx offload off).  In fw "
        "the patched ovs-vswitchd (`datapath_type=netdev`, ports on the veth ends through "
        "AF_PACKET, read by the main thread) forwards port 1 (inside) to port 2.  trafgen "
        "floods 54-byte TCP SYNs from gen, cycling over 256 source ports, for "
        f"{r.seconds} s per measurement; the throughput is what sink's interface received "
        "per second (sink drops the SYNs unanswered: their destination address is "
        "nobody's).  "
    )


def _report(r: DatapathRun) -> list[str]:
    rows = []
    for name, s in r.pps.items():
        rows.append([DESCRIPTIONS.get(name, name), s.fmt(), f"{r.ratio(name):.2f}",
                     r.cycles[name].fmt(),
                     r.rtt_ms[name].fmt(digits=3) if r.io == "afpacket" else "-"])  # fmt: skip
    checks = [
        f"- {'met' if ok else '**missed**'}: {what}: {detail}" for what, ok, detail in r.checks
    ]
    return [
        "## Method",
        "",
        _method(r) + "The program is "
        "`bpf/tcp_firewall.c` with port 1 marked inside: every SYN is a connection it looks "
        "up in its LRU hash.  It is loaded twice: as program 1, which the switch runs as "
        f"{r.modes.get(1, '?')!r}, and as program 2 with `other_config:bpf-jit=false`, run as "
        f"{r.modes.get(2, '?')!r} (the interpreter configuration).  "
        "The `ct()` firewall is the same policy on Open vSwitch's "
        "userspace conntrack.  Flows are replaced between measurements on one switch; "
        f"{r.runs} rounds interleave the configurations; figures are medians with min-max.  "
        "Cycles per packet: the processing cycles per packet of the switch thread that "
        "received the most packets (`ovs-appctl dpif-netdev/pmd-stats-show`, cleared before "
        "each flood; only PMD threads count them, not the main thread that reads AF_PACKET "
        "ports).  RTT (AF_PACKET paths only): 10 pings through the switch without load, "
        "before each flood.",
        "",
        *markdown_table(
            ["configuration", "pps (median, min-max)", "ratio to plain", "cycles/packet", "RTT ms"],
            rows,
        ),
        "",
        "The filter's own counters in the switch over the measurements (dump-bpf-progs):",
        "",
        *markdown_table(
            ["configuration", "runs as", "filter runs", "pass", "drop", "ns per run"],
            [
                [
                    DESCRIPTIONS.get(n, n),
                    r.modes.get(PROGRAM[n], "?") if n in PROGRAM else "-",
                    t["runs"],
                    t["pass"],
                    t["drop"],
                    f"{t['run_nsec'] / t['runs']:.0f}" if t["runs"] else "-",
                ]
                for n, t in r.prog.items()
            ],
        ),
        "",
        *_filter_cost_section(r),
        *_tracing_section(r),
        "Targets:",
        "",
        *checks,
        "",
        _limits(r),
    ]


def _filter_cost_section(r: DatapathRun) -> list[str]:
    """What the filter costs per packet: in the switch (from cycles) and
    alone, in libokovm and in the kernel."""
    rows = [
        [f"in the switch: {DESCRIPTIONS[n]} - plain forwarding", f"{r.added_ns(n):.1f}"]
        for n in ("monitor", "one-pass", "recirc")
        if n in r.cycles and not math.isnan(r.added_ns(n))
    ]
    alone = {"libokovm": "alone, libokovm's JIT (okovm_prog_bench; reads the clock each run)",
             "kernel": "alone, the kernel's XDP JIT (BPF_PROG_TEST_RUN)"}  # fmt: skip
    in_switch = (
        (
            "In the switch: the median over the rounds of each round's difference in cycles "
            f"per packet, at the TSC's {r.tsc_mhz:.0f} MHz, so it includes what the bpf "
            "action does around the program (finding it, the batch, the verdicts, the "
            "recirculation where there is one).  "
        )
        if rows
        else "In the switch: not known from this run (no thread counted its cycles).  "
    )
    rows += [[what, f"{r.filter_ns.get(k, float('nan')):.1f}"] for k, what in alone.items()]
    return [
        "The filter's cost per packet, in ns.  " + in_switch + "Alone: the same object on "
        "the generator's first SYN from an inside port, its connection already in the map, "
        "repeated, statistics and harness included.",
        "",
        *markdown_table(["where", "ns per packet"], rows),
        "",
    ]


def _tracing_section(r: DatapathRun) -> list[str]:
    """What the tracing configurations were, when they ran."""
    ran = [n for n in TRACE_CONFIGS if n in r.pps]
    if not ran:
        return []
    text = (
        "Tracing (`--trace`): the recirculating firewall measured again with `okopy trace` "
        "attached (`--json`, its default cap of 200 runs a second, output thrown away) and "
        "with `okopy top` attached (refreshing every second); both attach to the switch's "
        "`okopy:bpf_batch` USDT probe, which then fires once per datapath batch, for at "
        "most `other_config:bpf-trace-rate` batches a second per datapath thread (its "
        "default, 10000), and the switch times each run of those batches "
        "(okovm_prog_run_batch_timed()).  "
    )
    if "no-usdt" in ran:
        text += (
            "`no-usdt`: the same on a second switch built without USDT probes (build flavor "
            "`no-usdt`), on its own veth path, measured in the same rounds: with nothing "
            "attached, the probes' only code in the datapath is one test of their "
            "semaphores per batch.  "
        )
    text += (
        "These checks compare each configuration with recirc (or recirc with the probe-less "
        "switch) round by round, so that drift between rounds cancels."
    )
    return [text, ""]


def _limits(r: DatapathRun) -> str:
    if r.io == "dpdk":
        return (
            "Limits on this 2-core machine: the generator and the switch's one PMD thread each "
            "have a core, and nothing else may run: another process on either core moves the "
            "figures by tens of percent from round to round.  The ports are vhost-user rings "
            "in shared memory, so every packet is copied once into and once out of the switch "
            "by the CPU; no NIC, no DMA.  With many flows the firewall's connections no longer "
            "fit the caches and its map lookups miss them; with one flow they always hit."
        )
    if r.io == "afxdp":
        return (
            "Limits on this 2-core machine: veth has no AF_XDP zero-copy, so each packet is "
            "copied by the kernel into an skb and out again at every veth crossing, and the "
            "switch's transmit is a `sendto()` system call in which the kernel carries the "
            "batch across veth and runs the generator's XDP program: the PMD thread's "
            "cycles per packet are mostly the kernel's.  The filter is a small share of "
            "that, so the ratios say little about it here; `--io dpdk` measures it."
        )
    return (
        "Limits on this 2-core machine: trafgen, ovs-vswitchd's PMD/handler threads and the "
        "receiving kernel share two cores; the userspace datapath reads and writes veth "
        "through AF_PACKET system calls, which cost far more per packet than the filter, so "
        "the ratios say more than the absolute rates."
    )


def _plot(r: DatapathRun, path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    names = list(r.pps)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    meds = [r.pps[n].median for n in names]
    lo = [r.pps[n].median - r.pps[n].spread[0] for n in names]
    hi = [r.pps[n].spread[1] - r.pps[n].median for n in names]
    ax.bar([DESCRIPTIONS.get(n, n) for n in names], meds, yerr=[lo, hi], capsize=4)
    ax.set_ylabel("packets/s received")
    ports = {"dpdk": "DPDK vhost-user ports", "afxdp": "AF_XDP ports on veth"}
    ax.set_title(
        f"Patched OVS, {ports[r.io]}, 64-byte TCP SYNs over {r.flows} flow(s)"
        if r.io in ports
        else "Patched OVS (netdev datapath), 54-byte TCP SYN flood"
    )
    ax.tick_params(axis="x", labelsize=8, labelrotation=25)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
