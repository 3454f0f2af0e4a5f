"""`okopy bench datapath --profile CONFIG`: where the switch's time goes.

Sets up the path of `okopy bench datapath` (the same ports, programs and
flow tables), floods it with one configuration and samples the thread that
forwards the packets (the PMD thread with `--io dpdk` or `afxdp`, the main
thread with AF_PACKET ports) with `perf record`.  The samples are grouped
by what they are: the BPF program's native code (perf shows it as
`[JIT] tid N`: it has no symbols), libokovm's maps, the clock, the rest of
the bpf action, conntrack, vhost-user or AF_XDP I/O, Open vSwitch's own
datapath, and the kernel.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from okopy.bench.datapath import CONFIGS, GENERATOR_IO, Bench
from okopy.paths import Layout

# (group, test on (shared object, symbol)); the first that matches wins.
GROUPS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("BPF program (native code)", lambda dso, sym: dso.startswith("[JIT]")),
    ("clock reads", lambda dso, sym: dso == "[vdso]" or "clock_gettime" in sym
     or sym in ("okovm_ns_now", "time_usec", "time_timespec__", "time_msec")),
    # (The JIT inlines array lookups into the program's native code.)
    ("BPF maps (libokovm)", lambda dso, sym: sym.startswith(("okovm_map_", "hash_find",
                                                              "hash_lookup", "lpm_", "array_",
                                                              "lru_"))
     or sym == "hash_bytes"),
    ("bpf action (libokovm, dp-bpf)", lambda dso, sym: sym.startswith(("okovm_", "dp_bpf_",
                                                                        "helper_"))
     or sym == "dp_execute_bpf_action"),
    ("conntrack", lambda dso, sym: sym.startswith(("conntrack", "conn_", "ct_"))),
    ("vhost-user I/O (DPDK)", lambda dso, sym: "librte_vhost" in dso
     or sym.startswith(("netdev_dpdk", "rte_", "virtio"))),
    ("AF_XDP I/O (netdev-afxdp, libxdp)", lambda dso, sym: "libxdp" in dso
     or sym.startswith(("netdev_afxdp", "dp_packet_use_afxdp", "xsk_", "umem_"))),
    ("Open vSwitch datapath", lambda dso, sym: dso == "ovs-vswitchd"),
    # With AF_XDP or AF_PACKET ports: the system calls that send and
    # receive, and with veth the peer's receive and XDP run in them too.
    ("kernel", lambda dso, sym: dso == "[kernel.kallsyms]"),
]  # fmt: skip
OTHER = "other (libc, ...)"


@dataclass
class Profile:
    config: str
    flows: int
    io: str
    thread: str
    pps: float = 0.0
    samples: int = 0
    # (percent of samples, shared object, symbol), largest first.
    symbols: list[tuple[float, str, str]] = field(default_factory=list)

    def groups(self) -> dict[str, float]:
        """Percent of the samples in each group (GROUPS, then OTHER)."""
        out = {name: 0.0 for name, _ in GROUPS}
        out[OTHER] = 0.0
        for pct, dso, sym in self.symbols:
            name = next((n for n, test in GROUPS if test(dso, sym)), OTHER)
            out[name] += pct
        return out

    def text(self, top: int = 15) -> str:
        lines = [f"{self.config}, {self.flows} flow(s), --io {self.io}: {self.pps / 1e6:.2f} Mpps "
                 f"while sampled; {self.samples} samples of thread {self.thread}", ""]  # fmt: skip
        lines += [f"  {pct:5.1f}%  {name}" for name, pct in self.groups().items()]
        lines += ["", f"top {top} symbols:"]
        lines += [f"  {pct:5.1f}%  {dso:<24} {sym}" for pct, dso, sym in self.symbols[:top]]
        return "\n".join(lines)


def parse_report(text: str) -> list[tuple[float, str, str]]:
    """`perf report --stdio --no-children --sort dso,sym -t ';'` lines."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or ";" not in line:
            continue
        pct, dso, sym = (part.strip() for part in line.split(";", 2))
        if not pct.endswith("%"):
            continue
        sym = re.sub(r"^\[[.k]\]\s*", "", sym)
        out.append((float(pct[:-1]), dso, sym))
    return sorted(out, reverse=True)


def forwarding_thread(pid: int, io: str) -> tuple[int, str]:
    """(tid, name) of the thread that forwards: a PMD thread for DPDK and
    AF_XDP ports, the main thread otherwise."""
    listing = subprocess.run(["ps", "-T", "-p", str(pid), "-o", "tid=,comm="],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    for line in listing.splitlines():
        tid, _, comm = line.strip().partition(" ")
        if io in GENERATOR_IO and comm.strip().startswith("pmd"):
            return int(tid), comm.strip()
    return pid, "ovs-vswitchd (main)"


def run(layout: Layout, config: str, io: str = "dpdk", flows: int = 1,
        seconds: float = 4.0, log: Callable[[str], None] = print) -> Profile:  # fmt: skip
    """Profile 'config' of `okopy bench datapath` for 'seconds'."""
    if config not in CONFIGS:
        raise ValueError(f"--profile {config!r}: one of {', '.join(CONFIGS)}")
    perf = shutil.which("perf")
    if perf is None:
        raise RuntimeError("perf is not installed (Debian: apt-get install linux-perf)")
    bench = Bench(layout, io, flows)
    try:
        bench.configure(config)
        assert bench.switch is not None
        tid, thread = forwarding_thread(bench.switch.pids["ovs-vswitchd"], io)
        result = Profile(config, flows, io, thread)
        flood: dict[str, float] = {}
        # The flood runs longer than the sampling on both sides.
        sender = threading.Thread(target=lambda: flood.setdefault("pps", bench.flood(seconds + 3)))
        sender.start()
        data = Path(bench.dir.name) / "perf.data"
        try:
            threading.Event().wait(1.5)
            record = [perf, "record", "-q", "-F", "2000", "-t", str(tid), "-o", str(data),
                      "--", "sleep", str(seconds)]  # fmt: skip
            subprocess.run(record, capture_output=True, text=True, check=True,
                           timeout=seconds + 60)  # fmt: skip
        finally:
            sender.join()
        result.pps = flood.get("pps", 0.0)
        argv = [perf, "report", "-i", str(data), "--stdio", "--no-children",
                "--sort", "dso,sym", "-t", ";"]  # fmt: skip
        report = subprocess.run(argv, capture_output=True, text=True, check=True,
                                timeout=120).stdout  # fmt: skip
        result.symbols = parse_report(report)
        found = re.search(r"# Samples: (\d+)(K?)", report)
        if found:
            result.samples = int(found.group(1)) * (1000 if found.group(2) else 1)
        log(result.text())
        return result
    finally:
        bench.close()
