"""Offline tools: inspect an object, verify it, run it over a pcap.

`inspect` reads the ELF and BTF in Python (no loading); `verify` and `run`
use libokovm, the switch's own VM, so what passes here passes there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from okopy.bpf import elf, vm
from okopy.bpf.btf import Btf, BtfError, decode_or_hex, map_definitions, parse_entry_text
from okopy.traffic.pcap import Packet
from okopy.traffic.summary import summarize

SHF_EXECINSTR = 0x4
PIN_NAMES = {0: "none", 1: "by_name"}


def inspect_object(blob: bytes) -> dict[str, Any]:
    """Programs, maps (with their BTF types) and metadata of an object."""
    secs = elf.sections(blob)
    funcs = elf.functions(blob)
    programs = []
    for sec in secs.values():
        if sec.flags & SHF_EXECINSTR and sec.size:
            names = [f.name for f in funcs if f.section == sec.name]
            programs.append(
                {"section": sec.name, "functions": names, "instructions": sec.size // 8}
            )
    info: dict[str, Any] = {"programs": programs, "maps": [], "btf": ".BTF" in secs}
    if ".BTF" in secs:
        btf = Btf.parse(secs[".BTF"].data)
        for m in map_definitions(btf):
            info["maps"].append(
                {
                    "name": m.name,
                    "type": m.type_name,
                    "key": btf.type_name(m.key_type_id) if m.key_type_id else None,
                    "value": btf.type_name(m.value_type_id) if m.value_type_id else None,
                    "key_size": m.key_size,
                    "value_size": m.value_size,
                    "max_entries": m.max_entries,
                    "flags": m.map_flags,
                    "pinning": PIN_NAMES.get(m.pinning, str(m.pinning)),
                }
            )
    lic = secs.get("license")
    info["license"] = lic.data.rstrip(b"\0").decode("utf-8", "replace") if lic else None
    return info


def format_inspect(info: dict[str, Any]) -> str:
    lines = []
    for p in info["programs"]:
        fn = ", ".join(p["functions"]) or "?"
        lines.append(f"program section {p['section']}: {fn} ({p['instructions']} insns)")
    if not info["btf"]:
        lines.append("no BTF: maps cannot be typed (compile with -g)")
    for m in info["maps"]:
        lines.append(
            f"map {m['name']}: {m['type']}, key {m['key'] or m['key_size']} "
            f"({m['key_size']} B), value {m['value'] or m['value_size']} "
            f"({m['value_size']} B), max_entries {m['max_entries']}"
            + (f", flags {m['flags']:#x}" if m["flags"] else "")
            + (", pinned by name" if m["pinning"] == "by_name" else "")
        )
    lines.append(f"license: {info['license'] or 'none'}")
    return "\n".join(lines)


@dataclass
class RunResult:
    program: vm.ProgramInfo
    packets: int = 0
    verdicts: dict[int, int] = field(default_factory=dict)
    maps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # bpf_trace_printk() lines, with the packet that printed them (1-based),
    # when the run was asked to trace.
    trace: list[tuple[int, str]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "program": {
                "name": self.program.name,
                "section": self.program.section,
                "instructions": self.program.n_insns,
                "mode": self.program.mode,
                "engine": engine(self.program),
            },
            "packets": self.packets,
            "verdicts": {verdict_name(v): n for v, n in sorted(self.verdicts.items())},
            "maps": self.maps,
            **(
                {"trace": [{"packet": n, "message": m} for n, m in self.trace]}
                if self.trace is not None
                else {}
            ),
        }


def verdict_name(v: int) -> str:
    return vm.XDP_VERDICTS.get(v, str(v))


def parse_seed(spec: str) -> tuple[str, Any, Any]:
    """`MAP=KEY=VALUE`, KEY and VALUE as JSON, bare text (a string, as
    `10.0.0.1`) or 0x-prefixed hex (raw bytes)."""
    parts = spec.split("=", 2)
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"seed {spec!r}: expected MAP=KEY=VALUE")

    def value(text: str) -> Any:
        if text.startswith("0x"):
            return bytes.fromhex(text[2:])
        try:
            return parse_entry_text(text)
        except ValueError as e:
            raise ValueError(f"seed {spec!r}: {e}") from None

    return parts[0], value(parts[1]), value(parts[2])


def seed_map(prog: vm.Program, name: str, key: Any, value: Any) -> None:
    m = prog.map(name)
    m.update(m.encode_key(key), m.encode_value(value))


Clock = Callable[[Packet], int] | None


def run_packets(
    prog: vm.Program,
    packets: Iterable[Packet],
    *,
    clock: Clock = None,
    in_port: int = 0,
    trace: bool = False,
) -> RunResult:
    """Run every packet; 'clock(packet)' fixes bpf_ktime_get_ns per packet.
    With 'trace', every bpf_trace_printk() line is kept (no rate limit)."""
    result = RunResult(prog.info)
    if trace:
        lines: list[tuple[int, str]] = []
        result.trace = lines
        prefix = f"{prog.ns.name}: {prog.info.name}: bpf_trace_printk: "
        prog.ns.set_printk_rate(TRACE_UNLIMITED, TRACE_UNLIMITED)
        prog.ns.set_log(
            lambda _level, msg: lines.append((result.packets + 1, msg.removeprefix(prefix)))
        )
    try:
        for pkt in packets:
            if clock is not None:
                prog.ns.set_fixed_clock(clock(pkt))
            v = prog.run(pkt.data, in_port)
            result.verdicts[v] = result.verdicts.get(v, 0) + 1
            result.packets += 1
    finally:
        if trace:
            prog.ns.set_log(None)
    for name, m in prog.maps.items():
        if m.info.global_data:
            continue
        try:
            result.maps[name] = m.dump()
        except BtfError:
            result.maps[name] = [{"key": k.hex(), "value": v.hex()} for k, v in m.items()]
    return result


TRACE_UNLIMITED = 0xFFFFFFFF


def engine(p: vm.ProgramInfo) -> str:
    """How a loaded program runs, in the switch's words (`prog list`'s mode):
    'jit' (native code) or 'interpreter', both for programs the kernel
    admitted, or 'sandbox' (every access checked at run time)."""
    if p.mode == "sandbox":
        return "sandbox"
    return "jit" if p.jit else "interpreter"


def format_run(result: RunResult, source: str, max_entries: int = 20) -> str:
    p = result.program
    how = {
        "sandbox": "sandbox mode",
        "jit": "kernel-verified, ran as native code (JIT)",
        "interpreter": "kernel-verified, ran in the interpreter",
    }[engine(p)]
    lines = [
        f"program {p.name} (section {p.section}, {p.n_insns} insns, {how})",
        f"packets: {result.packets} from {source}",
    ]
    total = result.packets or 1
    verdicts = ", ".join(
        f"{verdict_name(v)} {n} ({100 * n / total:.1f}%)"
        for v, n in sorted(result.verdicts.items(), key=lambda kv: -kv[1])
    )
    lines.append(f"verdicts: {verdicts or 'none'}")
    for name, entries in result.maps.items():
        lines.append(f"map {name}: {len(entries)} entries")
        for e in entries[:max_entries]:
            lines.append(
                f"  {json.dumps(e['key'], sort_keys=False)} -> "
                f"{json.dumps(e['value'], sort_keys=False)}"
            )
        if len(entries) > max_entries:
            lines.append(f"  ... {len(entries) - max_entries} more (--json for all)")
    if result.trace is not None:
        lines.append(f"trace: {len(result.trace)} lines (bpf_trace_printk)")
        lines.extend(f"  packet {n}: {msg}" for n, msg in result.trace)
    return "\n".join(lines)


def describe_error(e: vm.VmError) -> str:
    return f"refused: {e.describe()}"


def pcap_clock(mode: str, packets: Sequence[Packet]) -> Clock:
    """'pcap': packet timestamps; 'real': the host clock; a number: fixed."""
    if mode == "real":
        return None
    if mode == "pcap":
        return lambda p: p.timestamp_ns
    try:
        fixed = int(mode)
    except ValueError:
        raise ValueError(f"--clock {mode!r}: expected pcap, real or nanoseconds") from None
    return lambda _p: fixed


# Explaining one packet (`okopy run --explain K`) ----------------------------


@dataclass
class Step:
    """Consecutive instructions of one source line, and the map accesses
    among them."""

    file: str
    line: int
    text: str
    insns: list[int] = field(default_factory=list)
    accesses: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "line": self.line, "source": self.text.strip(),
            "insns": self.insns, "map_accesses": self.accesses,
        }  # fmt: skip


@dataclass
class Explanation:
    program: vm.ProgramInfo
    number: int
    summary: str
    length: int
    verdict: int
    executed: int
    steps: list[Step]
    changes: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "program": self.program.name,
            "packet": self.number,
            "summary": self.summary,
            "bytes": self.length,
            "instructions_executed": self.executed,
            "path": [s.to_json() for s in self.steps],
            "map_changes": self.changes,
            "verdict": {"value": self.verdict, "name": verdict_name(self.verdict)},
        }


def _typed_key(m: vm.Map, key: bytes) -> Any:
    return decode_or_hex(m.btf, m.info.btf_key_type_id, key)


def _typed_value(m: vm.Map, value: bytes | None) -> Any:
    return None if value is None else m.decode_value(value)


def explain_packet(
    prog: vm.Program,
    packets: Sequence[Packet],
    number: int,
    *,
    clock: Clock = None,
    in_port: int = 0,
) -> Explanation:
    """Runs packets 1..number-1 as `run` does, so that map state is what
    the capture left, then explains packet 'number' (1-based): the source
    lines it went through, the map entries it read and wrote, the verdict."""
    if not 1 <= number <= len(packets):
        raise ValueError(f"--explain {number}: the capture has packets 1 to {len(packets)}")
    run_packets(prog, packets[: number - 1], clock=clock, in_port=in_port)
    pkt = packets[number - 1]
    if clock is not None:
        prog.ns.set_fixed_clock(clock(pkt))
    got = prog.explain(pkt.data, in_port)
    steps: list[Step] = []
    pending = list(got.accesses)
    for insn in got.path:
        src = prog.source(insn)
        where = (src.file, src.line, src.text) if src and src.line else None
        if where is not None and (not steps or (steps[-1].file, steps[-1].line) != where[:2]):
            steps.append(Step(*where))
        if not steps:
            steps.append(Step("?", 0, ""))
        steps[-1].insns.append(insn)
        if pending and pending[0].insn == insn:
            a = pending.pop(0)
            key = _typed_key(prog.map(a.map), a.key)
            steps[-1].accesses.append({"op": a.op, "map": a.map, "key": key})
    changes = []
    for c in got.changes:
        m = prog.map(c.map)
        changes.append({"map": c.map, "key": _typed_key(m, c.key),
                        "before": _typed_value(m, c.before),
                        "after": _typed_value(m, c.after)})  # fmt: skip
    return Explanation(prog.info, number, summarize(pkt.data), len(pkt.data), got.verdict,
                       len(got.path), steps, changes)  # fmt: skip


def format_explanation(e: Explanation, source: str) -> str:
    def j(v: Any) -> str:
        return "absent" if v is None else json.dumps(v)

    lines = [
        f"packet {e.number} of {source}: {e.summary} ({e.length} bytes)",
        f"program {e.program.name}: {e.executed} instructions executed, through these lines:",
    ]
    for s in e.steps:
        lines.append(f"  {os.path.basename(s.file)}:{s.line:<5} {s.text.strip()}")
        for a in s.accesses:
            lines.append(f"      {a['op']} {a['map']}[{j(a['key'])}]")
    if e.changes:
        lines.append("map entries it touched (before -> after):")
        for c in e.changes:
            same = "" if c["before"] != c["after"] else "  (unchanged)"
            lines.append(f"  {c['map']}[{j(c['key'])}]: {j(c['before'])} -> {j(c['after'])}{same}")
    else:
        lines.append("map entries it touched: none")
    lines.append(f"verdict: {verdict_name(e.verdict)} ({e.verdict})")
    return "\n".join(lines)
