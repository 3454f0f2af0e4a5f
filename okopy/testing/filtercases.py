"""Table-driven filter tests: each case in the VM and in the Linux kernel.

A filter test is a list of `Case`s, run in order against one program whose
maps keep their contents from case to case:

    run_cases(obj, [
        Case("SYN from inside passes", syn, "pass", in_port=1),
        Case("reply from outside passes", synack, "pass", in_port=2,
             maps={"conns": {key_json: {"state": "SYN_ACKED"}}}),
        Case("stray ACK is dropped", ack, "drop", in_port=2),
    ], seeds={"inside_ports": {1: 1}})

Every case runs in libokovm and, with the same clock and in_port, in the
kernel (BPF_PROG_TEST_RUN), and must give the expected verdict and map
contents in both.  Time is pinned the way `okopy.testing.differential` pins it:
the VM's fixed clock, and in the kernel the bpf_ktime_get_ns() calls
rewritten into the case's time (the object is reloaded, maps kept, when it
changes).  That rewrite takes a non-negative 31-bit constant, so case
times must stay below 2**31 ns (about 2.1 s): give filters short timeouts
through their config maps.

Expected map contents are JSON, converted through the map's BTF
(`okopy.bpf.vm.Map.encode_key` / `decode_value`): `{map: {key: value}}`, where
'value' None means "absent", and an object only compares the fields it
names (so counters and timestamps may be left out).  Keys that are objects
(struct keys) are given as JSON text, `'{"saddr": "10.0.0.1", ...}'`, or
the map's expectation as a list of (key, value) pairs.

The kernel presents a packet's ingress_ifindex from the device it is
"received" on, which must exist: in_port 1 is the loopback device of any
network namespace; for other in_ports the runner makes a private network
namespace holding veth devices with those ifindexes and runs the kernel's
test runs there.  in_port 0 cannot be presented by the kernel at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from okopy.bpf import elf as elfmod
from okopy.bpf import kernel, vm
from okopy.netns import Namespace, inside

DEFAULT_TIME_NS = 1_000_000
DEFAULT_PRANDOM = 0x2545F491
MAX_CLOCK_NS = (1 << 31) - 1
MIN_KERNEL_FRAME = 14
LOOPBACK_IFINDEX = 1
# Peer ends of the veth devices standing in for in_ports live above any
# OpenFlow port number.
PEER_IFINDEX_BASE = 0x10000
VERDICTS = {name: code for code, name in vm.XDP_VERDICTS.items()}

MapExpectation = Mapping[Any, Any] | Sequence[tuple[Any, Any]]


@dataclass(frozen=True)
class Case:
    """One packet, and what the filter must do with it.

    'verdict' is a number or one of aborted/drop/pass/tx/redirect.
    'time_ns' is what bpf_ktime_get_ns() returns; None keeps the previous
    case's time (the first case: DEFAULT_TIME_NS).  'maps' is checked after
    the run: {map name: {JSON key: JSON value, or None for absent}}."""

    description: str
    packet: bytes
    verdict: int | str
    time_ns: int | None = None
    in_port: int = LOOPBACK_IFINDEX
    maps: Mapping[str, MapExpectation] = field(default_factory=dict)


class CaseFailure(AssertionError):
    """A case gave another verdict or map content than expected."""


def verdict_code(verdict: int | str) -> int:
    if isinstance(verdict, int):
        return verdict
    try:
        return VERDICTS[verdict]
    except KeyError:
        raise ValueError(
            f"verdict {verdict!r} is not a number or one of {', '.join(VERDICTS)}"
        ) from None


def verdict_name(code: int) -> str:
    return f"{vm.XDP_VERDICTS.get(code, 'other')} ({code})"


def _entries(expect: MapExpectation) -> list[tuple[Any, Any]]:
    pairs = list(expect.items()) if isinstance(expect, Mapping) else list(expect)
    out = []
    for key, value in pairs:
        is_json = isinstance(key, str) and key[:1] in "{["
        out.append((json.loads(key) if is_json else key, value))
    return out


def _matches(want: Any, got: Any) -> bool:
    """'got' equals 'want', where objects in 'want' may name fewer fields."""
    if isinstance(want, Mapping):
        return isinstance(got, Mapping) and all(
            k in got and _matches(v, got[k]) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(want) == len(got)
            and all(_matches(w, g) for w, g in zip(want, got, strict=True))
        )
    return bool(want == got)


def _canonical(name: str) -> str:
    """libbpf names internal maps '<obj prefix>.rodata'; the VM '.rodata'."""
    return name[name.index(".") :] if "." in name else name


class _Runtime:
    """One runtime the cases run in; 'typed' converts keys and values."""

    name = ""

    def __init__(self, typed: vm.Program) -> None:
        self.typed = typed

    def run(self, packet: bytes, time_ns: int, in_port: int) -> int:
        raise NotImplementedError

    def lookup(self, map_name: str, key: bytes) -> bytes | None:
        raise NotImplementedError

    def update(self, map_name: str, key: bytes, value: bytes) -> None:
        raise NotImplementedError

    def check(self, case: Case) -> list[str]:
        """What differs from the case's expectations after its run."""
        problems = []
        for map_name, expect in case.maps.items():
            m = self.typed.map(map_name)
            for key, want in _entries(expect):
                raw = self.lookup(map_name, m.encode_key(key))
                got = None if raw is None else m.decode_value(raw)
                if (want is None) != (got is None) or (
                    want is not None and not _matches(want, got)
                ):
                    problems.append(
                        f"map {map_name} key {json.dumps(key)}: "
                        f"got {json.dumps(got)}, want "
                        f"{'absent' if want is None else json.dumps(want)}"
                    )
        return problems


class _VmRuntime(_Runtime):
    name = "VM"

    def __init__(self, obj: bytes, prog_name: str | None, prandom: int) -> None:
        self.ns = vm.Namespace("filtercases")
        prog = self.ns.load(elfmod.fix_helpers(obj, prandom=prandom), prog_name=prog_name)
        super().__init__(prog)

    def run(self, packet: bytes, time_ns: int, in_port: int) -> int:
        self.ns.set_fixed_clock(time_ns)
        return self.typed.run(packet, in_port=in_port)

    def lookup(self, map_name: str, key: bytes) -> bytes | None:
        return self.typed.map(map_name).lookup(key)

    def update(self, map_name: str, key: bytes, value: bytes) -> None:
        self.typed.map(map_name).update(key, value)


class _PortDevices:
    """A private network namespace where ifindex N exists for each in_port N.

    The kernel's XDP test runner takes ingress_ifindex from a real device of
    the calling thread's namespace; this thread enters the namespace for
    each test run only."""

    def __init__(self, ports: set[int]) -> None:
        self.ns: Namespace | None = None
        wanted = sorted(p for p in ports if p != LOOPBACK_IFINDEX)
        if not wanted:
            return
        self.ns = Namespace.create("ports")
        try:
            for port in wanted:
                self.ns.run(["ip", "link", "add", "name", f"port{port}",
                             "index", str(port), "type", "veth", "peer",
                             "name", f"peer{port}", "index",
                             str(PEER_IFINDEX_BASE + port)])  # fmt: skip
        except BaseException:
            self.close()
            raise

    @contextmanager
    def entered(self) -> Iterator[None]:
        if self.ns is None:
            yield
            return
        with inside(self.ns):
            yield

    def close(self) -> None:
        if self.ns is not None:
            self.ns.delete()
            self.ns = None


class _KernelRuntime(_Runtime):
    name = "kernel"

    def __init__(
        self,
        obj: bytes,
        prog_name: str | None,
        prandom: int,
        typed: vm.Program,
        ports: set[int],
    ) -> None:
        super().__init__(typed)
        self.obj = obj
        self.prandom = prandom
        self.clock = DEFAULT_TIME_NS
        self.prog = kernel.KernelProgram(self._pinned(self.clock), prog_name)
        self.maps = {_canonical(n): m for n, m in self.prog.maps.items()}
        try:
            self.devices = _PortDevices(ports)
        except BaseException:
            self.prog.close()
            raise

    def _pinned(self, time_ns: int) -> bytes:
        return elfmod.fix_helpers(self.obj, clock_ns=time_ns, prandom=self.prandom)

    def run(self, packet: bytes, time_ns: int, in_port: int) -> int:
        if time_ns != self.clock:
            self.prog.reload(self._pinned(time_ns))
            self.clock = time_ns
        with self.devices.entered():
            return _test_run(self.prog, packet, in_port)

    def lookup(self, map_name: str, key: bytes) -> bytes | None:
        return self.maps[map_name].lookup(key)

    def update(self, map_name: str, key: bytes, value: bytes) -> None:
        self.maps[map_name].update(key, value)

    def close(self) -> None:
        self.devices.close()
        self.prog.close()


def _test_run(prog: kernel.KernelProgram, packet: bytes, in_port: int) -> int:
    """BPF_PROG_TEST_RUN with 'in_port' as the ingress device."""
    if in_port == LOOPBACK_IFINDEX:
        return prog.run(packet).verdict
    return prog.run(packet, in_port=in_port).verdict


def _times(cases: Sequence[Case]) -> list[int]:
    out, now = [], DEFAULT_TIME_NS
    for i, case in enumerate(cases):
        if case.time_ns is not None:
            now = case.time_ns
        if not 0 <= now <= MAX_CLOCK_NS:
            raise ValueError(
                f"case {i} {case.description!r}: time_ns {now} is outside "
                f"0..2**31-1, the range the kernel's pinned clock can take"
            )
        out.append(now)
    return out


def _seed(rt: _Runtime, seeds: Mapping[str, MapExpectation]) -> None:
    for map_name, entries in seeds.items():
        m = rt.typed.map(map_name)
        for key, value in _entries(entries):
            rt.update(map_name, m.encode_key(key), m.encode_value(value))


def _first_failure(rt: _Runtime, cases: Sequence[Case], times: Sequence[int]) -> str | None:
    for i, (case, now) in enumerate(zip(cases, times, strict=True)):
        got = rt.run(case.packet, now, case.in_port)
        want = verdict_code(case.verdict)
        problems = rt.check(case)
        if got != want:
            problems.insert(0, f"verdict got {verdict_name(got)}, want {verdict_name(want)}")
        if problems:
            head = (
                f"case {i} {case.description!r} in the {rt.name} "
                f"(time {now} ns, in_port {case.in_port}):"
            )
            return "\n    ".join([head, *problems])
    return None


def run_cases(
    obj: bytes,
    cases: Sequence[Case],
    *,
    seeds: Mapping[str, MapExpectation] | None = None,
    prog_name: str | None = None,
    kernel_too: bool = True,
    prandom: int = DEFAULT_PRANDOM,
) -> None:
    """Run 'cases' in order in the VM and in the kernel; raise CaseFailure.

    'seeds' are map entries written first, as JSON ({map: {key: value}}).
    The failure names the first failing case of each runtime."""
    times = _times(cases)
    for i, case in enumerate(cases):
        verdict_code(case.verdict)
        if kernel_too and len(case.packet) < MIN_KERNEL_FRAME:
            raise ValueError(
                f"case {i} {case.description!r}: the kernel's test runner "
                f"refuses frames under {MIN_KERNEL_FRAME} bytes"
            )
        if kernel_too and case.in_port <= 0:
            raise ValueError(
                f"case {i} {case.description!r}: in_port must be >= 1, an "
                "ifindex the kernel can present"
            )
    vm_rt = _VmRuntime(obj, prog_name, prandom)
    _seed(vm_rt, seeds or {})
    failures = []
    vm_failure = _first_failure(vm_rt, cases, times)
    if vm_failure:
        failures.append(vm_failure)
    if kernel_too:
        # The VM's program lends its maps' BTF for conversions.
        k_rt = _KernelRuntime(obj, prog_name, prandom, vm_rt.typed, {c.in_port for c in cases})
        try:
            _seed(k_rt, seeds or {})
            k_failure = _first_failure(k_rt, cases, times)
        finally:
            k_rt.close()
        if k_failure:
            failures.append(k_failure)
    if failures:
        raise CaseFailure("\n".join(failures))


def run_verdicts(
    obj: bytes,
    packets: Sequence[tuple[bytes, int]],
    *,
    seeds: Mapping[str, MapExpectation] | None = None,
    prog_name: str | None = None,
    time_ns: int = DEFAULT_TIME_NS,
) -> tuple[list[int], list[int]]:
    """Every (frame, in_port) in order through the VM and through the
    kernel, maps carried over from packet to packet as on the wire:
    the verdicts of each.  For tests whose oracle is elsewhere (a real
    iptables) and who compare verdicts themselves."""
    vm_rt = _VmRuntime(obj, prog_name, DEFAULT_PRANDOM)
    _seed(vm_rt, seeds or {})
    got_vm = [vm_rt.run(p, time_ns, port) for p, port in packets]
    k_rt = _KernelRuntime(obj, prog_name, DEFAULT_PRANDOM, vm_rt.typed, {p for _, p in packets})
    try:
        _seed(k_rt, seeds or {})
        got_k = [k_rt.run(p, time_ns, port) for p, port in packets]
    finally:
        k_rt.close()
    return got_vm, got_k
