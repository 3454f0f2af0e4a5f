"""Differential runs: the same object and packets in libokovm and the kernel.

Time and randomness are fixed by rewriting the helper calls into constants
(`okopy.bpf.elf.fix_helpers`), identically for both runtimes, so any difference
in verdicts or final map contents is a bug in one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from okopy.bpf import elf as elfmod
from okopy.bpf import vm
from okopy.bpf.kernel import KernelMap, KernelProgram

DEFAULT_CLOCK_NS = 1_000_000
DEFAULT_PRANDOM = 0x2545F491
LRU_HASH = "lru_hash"
MIN_KERNEL_FRAME = 14
# BPF_PROG_TEST_RUN without a context "receives" on the loopback device, so
# the kernel shows ingress_ifindex 1; the VM is given the same in_port.
KERNEL_TEST_IN_PORT = 1


@dataclass
class Mismatch:
    index: int
    packet: bytes
    vm_verdict: int
    kernel_verdict: int


@dataclass
class DiffReport:
    packets: int = 0
    verdicts: dict[int, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    map_differences: dict[str, str] = field(default_factory=dict)
    maps_compared: list[str] = field(default_factory=list)
    maps_skipped: dict[str, str] = field(default_factory=dict)
    # Every map's contents in the VM after the run (the kernel's are equal
    # wherever maps_compared says so).
    vm_maps: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    # Runts the kernel's test runner refuses (XDP needs an Ethernet header);
    # they still ran in the VM.
    vm_only: int = 0
    # The VM ran the program as native code (libokovm's JIT).
    jit: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.map_differences

    def summary(self) -> str:
        lines = [
            f"{self.packets} packets, verdicts {self.verdicts}, "
            f"{len(self.mismatches)} verdict mismatches, {self.vm_only} runts "
            "run in the VM only, maps compared: "
            f"{', '.join(self.maps_compared) or 'none'}"
        ]
        for m in self.mismatches[:5]:
            lines.append(
                f"  packet {m.index}: vm {m.vm_verdict} kernel {m.kernel_verdict} "
                f"({m.packet[:64].hex()})"
            )
        for name, why in self.map_differences.items():
            lines.append(f"  map {name}: {why}")
        for name, why in self.maps_skipped.items():
            lines.append(f"  map {name} not compared: {why}")
        return "\n".join(lines)


def _canonical(name: str) -> str:
    """libbpf names internal maps '<obj prefix>.rodata'; the VM '.rodata'."""
    return name[name.index(".") :] if "." in name else name


def run(
    obj: bytes,
    packets: Sequence[bytes],
    *,
    clock_ns: Sequence[int] | None = None,
    prandom: int = DEFAULT_PRANDOM,
    seeds: dict[str, list[tuple[bytes, bytes]]] | None = None,
    prog_name: str | None = None,
    jit: bool = True,
) -> DiffReport:
    """Run 'packets' through both runtimes; 'clock_ns[i]' is packet i's time."""
    clocks = list(clock_ns) if clock_ns is not None else [DEFAULT_CLOCK_NS] * len(packets)
    if len(clocks) != len(packets):
        raise ValueError("clock_ns needs one time per packet")
    report = DiffReport(packets=len(packets))
    fixed = elfmod.fix_helpers(obj, clock_ns=clocks[0] if clocks else 0, prandom=prandom)

    ns = vm.Namespace("differential")
    prog = ns.load(elfmod.fix_helpers(obj, prandom=prandom), prog_name=prog_name, jit=jit)
    report.jit = prog.info.jit
    with KernelProgram(fixed, prog_name) as kern:
        kmaps = {_canonical(n): m for n, m in kern.maps.items()}
        for name, entries in (seeds or {}).items():
            for key, value in entries:
                prog.map(name).update(key, value)
                kmaps[name].update(key, value)
        current = clocks[0] if clocks else 0
        for i, (pkt, now) in enumerate(zip(packets, clocks, strict=True)):
            if now != current:
                kern.reload(elfmod.fix_helpers(obj, clock_ns=now, prandom=prandom))
                current = now
            ns.set_fixed_clock(now)
            v = prog.run(pkt, in_port=KERNEL_TEST_IN_PORT)
            report.verdicts[v] = report.verdicts.get(v, 0) + 1
            if len(pkt) < MIN_KERNEL_FRAME:
                report.vm_only += 1
                continue
            k = kern.run(pkt).verdict
            if v != k:
                report.mismatches.append(Mismatch(i, pkt, v, k))
        _compare_maps(prog, kmaps, report)
    return report


def _compare_maps(prog: vm.Program, kmaps: dict[str, KernelMap], report: DiffReport) -> None:
    for name, vmap in prog.maps.items():
        kmap = kmaps.get(name)
        if kmap is None:
            report.map_differences[name] = "missing in the kernel's object"
            continue
        mine = dict(vmap.items())
        report.vm_maps[name] = mine
        theirs = kmap.items()
        if vmap.info.type == LRU_HASH and max(len(mine), len(theirs)) >= vmap.info.max_entries:
            report.maps_skipped[name] = "full LRU map: eviction order is the runtime's own"
            continue
        report.maps_compared.append(name)
        if mine != theirs:
            only_vm = len(set(mine) - set(theirs))
            only_k = len(set(theirs) - set(mine))
            differ = sum(1 for k in set(mine) & set(theirs) if mine[k] != theirs[k])
            example = next(
                (k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)),
                b"",
            )
            report.map_differences[name] = (
                f"{only_vm} keys only in the VM, {only_k} only in the kernel, "
                f"{differ} values differ; e.g. key {example.hex()}: "
                f"vm {(mine.get(example) or b'').hex()} "
                f"kernel {(theirs.get(example) or b'').hex()}"
            )
