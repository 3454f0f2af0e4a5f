"""What the okopy:* probes report and what `okopy trace` and `okopy top`
make of it.  Pure: records in, lines and objects out.

The records are the bcc programs' (probes.py, whose C declares the same
layouts): one per program run (from okopy:bpf_batch) and one per program or map
change (okopy:prog_load, prog_unload, map_update, map_delete).
"""

from __future__ import annotations

import ipaddress
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from okopy.ofp.messages import VERDICT_CLASSES
from okopy.traffic.summary import ip_headers, summarize

# Bytes of each packet a run record carries: Ethernet, one VLAN tag, IPv6
# and a TCP header fit.
SNAP = 128
# Packets of a datapath batch at most (NETDEV_MAX_BURST): okopy:bpf_batch's
# arrays have room for as many.
BATCH = 32
BRIDGE_LEN = 32
NAME_LEN = 64
BYTES_LEN = 64

# struct run_event in probes.py's C.
RUN_EVENT = struct.Struct(f"<QQQIIIIII{BRIDGE_LEN}s{SNAP + 8}s")
# struct change_event in probes.py's C.
CHANGE_EVENT = struct.Struct(f"<QIIIiIIII{BRIDGE_LEN}s{NAME_LEN}s{BYTES_LEN}s{BYTES_LEN}s")
CHANGE_KINDS = {1: "prog_load", 2: "prog_unload", 3: "map_update", 4: "map_delete"}

# The verdict mask the run filter tests: bit v for XDP verdict v (0-4),
# bit 5 for any other value ("other"), as the switch's statistics count.
OTHER = len(VERDICT_CLASSES) - 1
ALL_VERDICTS = (1 << len(VERDICT_CLASSES)) - 1


class TraceInputError(ValueError):
    """A filter or option that cannot be used; the message says which."""


def verdict_class(verdict: int) -> int:
    return verdict if verdict < OTHER else OTHER


def verdict_name(verdict: int) -> str:
    return VERDICT_CLASSES[verdict] if verdict < OTHER else f"other({verdict})"


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


@dataclass(frozen=True)
class RunEvent:
    """One program run, as okopy:bpf_batch reported it."""

    ts_ns: int  # CLOCK_MONOTONIC
    run_ns: int
    length: int  # the packet's
    prog_id: int
    handle: int  # the datapath's
    verdict: int
    in_port: int
    cpu: int
    bridge: str
    data: bytes  # the packet's first min(length, SNAP) bytes

    @classmethod
    def decode(cls, raw: bytes) -> RunEvent:
        if len(raw) < RUN_EVENT.size:
            raise ValueError(f"run record of {len(raw)} bytes, expected {RUN_EVENT.size}")
        ts, run_ns, length, prog_id, handle, verdict, in_port, cap, cpu, bridge, data = (
            RUN_EVENT.unpack_from(raw)
        )
        return cls(ts, run_ns, length, prog_id, handle, verdict, in_port, cpu, _cstr(bridge),
                   data[: min(cap, SNAP, length)])  # fmt: skip


@dataclass(frozen=True)
class ChangeEvent:
    """A program loaded, replaced or unloaded, or a map entry written or
    deleted from OpenFlow."""

    ts_ns: int
    kind: str
    prog_id: int
    handle: int
    result: int  # prog_load: 1 if it replaced a program; map_*: errno or 0
    n_insns: int
    jit: bool
    bridge: str
    name: str  # the program's (prog_load) or the map's (map_*)
    key: bytes
    value: bytes

    @classmethod
    def decode(cls, raw: bytes) -> ChangeEvent:
        if len(raw) < CHANGE_EVENT.size:
            raise ValueError(f"change record of {len(raw)} bytes, expected {CHANGE_EVENT.size}")
        (ts, kind, prog_id, handle, result, n_insns, jit, ks, vs, bridge, name, key, value) = (
            CHANGE_EVENT.unpack_from(raw)
        )
        return cls(ts, CHANGE_KINDS.get(kind, f"kind {kind}"), prog_id, handle, result, n_insns,
                   bool(jit), _cstr(bridge), _cstr(name), key[: min(ks, BYTES_LEN)],
                   value[: min(vs, BYTES_LEN)])  # fmt: skip


# Filters -------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What `okopy trace` shows.  Program ids, the verdict mask, hosts and
    ports are tested in the kernel, before the rate cap counts an event."""

    prog_ids: frozenset[int] = frozenset()  # empty: every program
    verdict_mask: int = ALL_VERDICTS
    hosts: tuple[bytes, ...] = ()  # 16 bytes each, IPv4 mapped into IPv6
    ports: frozenset[int] = frozenset()
    rate: int = 200  # events per second at most; 0: no cap

    def kernel_defines(self) -> dict[str, int]:
        return {
            "FILTER_PROGS": int(bool(self.prog_ids)),
            "VERDICT_MASK": self.verdict_mask,
            "FILTER_HOSTS": int(bool(self.hosts)),
            "FILTER_PORTS": int(bool(self.ports)),
            "RATE_CAP": self.rate,
        }


def parse_verdicts(specs: Iterable[str]) -> int:
    """The verdict mask of --verdict values: names (drop, pass, tx,
    redirect, aborted, other) or XDP verdict numbers; none: all."""
    mask = 0
    for spec in specs:
        for word in spec.split(","):
            w = word.strip().lower()
            if w in VERDICT_CLASSES:
                mask |= 1 << VERDICT_CLASSES.index(w)
            elif w.isdigit():
                mask |= 1 << verdict_class(int(w))
            else:
                raise TraceInputError(
                    f"--verdict {word!r}: not a verdict (one of {', '.join(VERDICT_CLASSES)}, "
                    "or a number)"
                )
    return mask or ALL_VERDICTS


def host_key(address: str) -> bytes:
    """16 bytes: an IPv6 address, or an IPv4 address mapped into IPv6."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        raise TraceInputError(f"--host {address!r}: not an IPv4 or IPv6 address") from None
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\0" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def parse_ports(specs: Iterable[str]) -> frozenset[int]:
    ports = set()
    for spec in specs:
        for word in spec.split(","):
            if not word.strip().isdigit() or not 0 <= int(word) <= 65535:
                raise TraceInputError(f"--port {word!r}: not a port number (0 to 65535)")
            ports.add(int(word))
    return frozenset(ports)


@dataclass(frozen=True)
class Program:
    """A program loaded on one of the switch's bridges."""

    bridge: str
    prog_id: int
    name: str
    # (table, cookie) of each flow whose actions call it.
    flows: tuple[tuple[int, int], ...] = ()


def resolve_progs(specs: Iterable[str], programs: Iterable[Program]) -> frozenset[int]:
    """Program ids for --prog values, each an id or a program's name."""
    programs = list(programs)
    ids: set[int] = set()
    for spec in specs:
        for word in spec.split(","):
            w = word.strip()
            if w.isdigit():
                ids.add(int(w))
                continue
            found = {p.prog_id for p in programs if p.name == w}
            if not found:
                known = ", ".join(sorted({f"{p.name} ({p.prog_id})" for p in programs})) or "none"
                raise TraceInputError(f"--prog {w!r}: no program of that name (loaded: {known})")
            ids |= found
    return frozenset(ids)


_FLOW_BPF = re.compile(r"\bbpf\(prog=(\d+)")
_FLOW_TABLE = re.compile(r"\btable=(\d+)")
_FLOW_COOKIE = re.compile(r"\bcookie=(0x[0-9a-fA-F]+|\d+)")


def flows_calling(dump: str) -> dict[int, list[tuple[int, int]]]:
    """(table, cookie) of the flows in an `ovs-ofctl dump-flows` text that
    call each program, by program id."""
    out: dict[int, list[tuple[int, int]]] = {}
    for line in dump.splitlines():
        actions = line.partition("actions=")[2]
        match = line.partition("actions=")[0]
        for m in _FLOW_BPF.finditer(actions):
            table = _FLOW_TABLE.search(match)
            cookie = _FLOW_COOKIE.search(match)
            entry = (int(table.group(1)) if table else 0, int(cookie.group(1), 0) if cookie else 0)
            out.setdefault(int(m.group(1)), [])
            if entry not in out[int(m.group(1))]:
                out[int(m.group(1))].append(entry)
    return out


# What a run says ------------------------------------------------------------


def run_record(ev: RunEvent, prog: Program | None, clock_offset: float) -> dict[str, Any]:
    """The JSON object of one run: `okopy trace --json` prints one a line."""
    h = ip_headers(ev.data)
    out: dict[str, Any] = {
        "event": "run",
        "time": round(ev.ts_ns / 1e9 + clock_offset, 6),
        "bridge": ev.bridge,
        "prog_id": ev.prog_id,
        "prog": prog.name if prog else None,
        "verdict": verdict_name(ev.verdict) if ev.verdict < OTHER else "other",
        "verdict_code": ev.verdict,
        "in_port": ev.in_port,
        "run_ns": ev.run_ns,
        "len": ev.length,
        "src": h.src if h else None,
        "dst": h.dst if h else None,
        "proto": h.proto if h else None,
        "sport": h.sport if h else None,
        "dport": h.dport if h else None,
        "summary": summarize(ev.data),
    }
    if prog and prog.flows:
        out["flows"] = [{"table": t, "cookie": f"{c:#x}"} for t, c in prog.flows]
    return out


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1e6):06d}"


def run_line(ev: RunEvent, prog: Program | None, clock_offset: float) -> str:
    """'12:00:01.000123 br0 prog 1 (fw) drop in_port=1 10.0.0.1:99 > ... 143 ns table=1'."""
    who = f"prog {ev.prog_id}" + (f" ({prog.name})" if prog else "")
    text = (
        f"{_clock(ev.ts_ns / 1e9 + clock_offset)} {ev.bridge} {who} {verdict_name(ev.verdict)} "
        f"in_port={ev.in_port} {summarize(ev.data)} {ev.run_ns} ns"
    )
    if prog and prog.flows:
        text += " " + " ".join(f"table={t} cookie={c:#x}" for t, c in prog.flows)
    return text


def change_record(ev: ChangeEvent, clock_offset: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event": ev.kind,
        "time": round(ev.ts_ns / 1e9 + clock_offset, 6),
        "bridge": ev.bridge,
        "prog_id": ev.prog_id,
    }
    if ev.kind == "prog_load":
        out |= {"prog": ev.name, "replaced": bool(ev.result), "n_insns": ev.n_insns,
                "jit": ev.jit, "handle": ev.handle}  # fmt: skip
    elif ev.kind == "prog_unload":
        out["handle"] = ev.handle
    else:
        out |= {"map": ev.name, "key": ev.key.hex(), "error": ev.result}
        if ev.kind == "map_update":
            out["value"] = ev.value.hex()
    return out


def change_line(ev: ChangeEvent, clock_offset: float) -> str:
    head = f"{_clock(ev.ts_ns / 1e9 + clock_offset)} {ev.bridge} prog {ev.prog_id}"
    if ev.kind == "prog_load":
        what = "replaced by" if ev.result else "loaded as"
        mode = "native code" if ev.jit else "interpreted"
        return f"{head} {what} {ev.name!r} ({ev.n_insns} instructions, {mode})"
    if ev.kind == "prog_unload":
        return f"{head} unloaded"
    verb = "update" if ev.kind == "map_update" else "delete"
    text = f"{head} map {ev.name} {verb} key={ev.key.hex()}"
    if ev.kind == "map_update":
        text += f" value={ev.value.hex()}"
    return text + (f" failed: error {ev.result}" if ev.result else "")


# okopy top ------------------------------------------------------------------

# Run times are counted in log2 buckets: slot s holds [2^(s-1), 2^s) ns
# (bcc's bpf_log2l), slot 0 a run of 0 ns.
N_SLOTS = 64


def slot_bounds(slot: int) -> tuple[int, int]:
    return (0, 1) if slot == 0 else (1 << (slot - 1), 1 << slot)


def percentile(hist: Mapping[int, int], q: float) -> int | None:
    """The upper bound (ns) of the log2 bucket that holds quantile 'q'."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for slot in sorted(hist):
        seen += hist[slot]
        if seen >= rank:
            return slot_bounds(slot)[1]
    return slot_bounds(max(hist))[1]


@dataclass
class TopRow:
    bridge: str
    prog_id: int
    name: str | None
    rates: dict[str, float]  # verdict class -> runs per second
    runs_per_sec: float
    total_runs: int  # since top attached
    hist: dict[int, int]  # this interval's traced run times (log2 slots)
    p50_ns: int | None
    p99_ns: int | None
    per_batch: float | None = None  # runs per traced datapath batch, this interval
    estimated: bool = False  # rates scaled up from the traced runs


@dataclass
class ProbeCounts:
    """okopy top's bcc counters, summed over CPUs, cumulative since
    attaching, by datapath handle.  The switch traces at most its
    bpf-trace-rate batches a second per thread: 'counts', 'hist' and
    'batches' cover the traced ones, and 'skipped' the runs it did not
    trace, each reported with the next batch it traced (of any program)."""

    counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (handle, class)
    hist: dict[tuple[int, int], int] = field(default_factory=dict)  # (handle, slot)
    whos: dict[int, tuple[str, int]] = field(default_factory=dict)  # handle -> (bridge, id)
    batches: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)


# Cumulative runs by verdict class (VERDICT_CLASSES) of each program, by
# (bridge, program id), as the switch's program list counts them.
SwitchCounts = Mapping[tuple[str, int], Sequence[int]]


_K = TypeVar("_K")
_G = TypeVar("_G")


def _regroup(values: Mapping[_K, int], group: Callable[[_K], _G]) -> dict[_G, int]:
    """'values' summed by group(key)."""
    out: dict[_G, int] = {}
    for key, n in values.items():
        g = group(key)
        out[g] = out.get(g, 0) + n
    return out


def _by_prog(values: Mapping[tuple[int, int], int], whos: Mapping[int, tuple[str, int]]
             ) -> dict[tuple[tuple[str, int], int], int]:  # fmt: skip
    """Counters keyed by (program handle, k), summed by (program, k)."""
    return _regroup(values, lambda hk: (whos.get(hk[0], ("?", 0)), hk[1]))


def _sum_by_prog(values: Mapping[int, int], whos: Mapping[int, tuple[str, int]]
                 ) -> dict[tuple[str, int], int]:  # fmt: skip
    """Counters keyed by program handle, summed by program."""
    return _regroup(values, lambda h: whos.get(h, ("?", 0)))


@dataclass
class TopState:
    """okopy top's cumulative counters at the last refresh."""

    probe: ProbeCounts = field(default_factory=ProbeCounts)
    switch: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)
    base: dict[tuple[str, int], int] = field(default_factory=dict)  # runs when attached
    when: float | None = None

    def advance(
        self,
        probe: ProbeCounts,
        switch: SwitchCounts | None,
        programs: Mapping[tuple[str, int], Program],
        now: float,
    ) -> list[TopRow]:
        """Rows for the interval since the last call (since attaching, for
        the first).  Runs and verdicts come from the switch's own counters
        ('switch', from its program list) where it has the program: they
        count every run.  Otherwise they are the traced runs, scaled up by
        the runs the switch skipped ('estimated').  Run times and runs per
        batch are always the traced runs'."""
        dt = (now - self.when) if self.when is not None else None
        rate = (lambda n: n / dt) if dt else (lambda n: 0.0)
        n_classes = len(VERDICT_CLASSES)
        whos = {**self.probe.whos, **probe.whos}
        cur = _by_prog(probe.counts, whos)
        old = _by_prog(self.probe.counts, whos)
        cur_hist, old_hist = _by_prog(probe.hist, whos), _by_prog(self.probe.hist, whos)
        batches = _sum_by_prog(probe.batches, whos)
        old_batches = _sum_by_prog(self.probe.batches, whos)
        skipped = _sum_by_prog(probe.skipped, whos)
        old_skipped = _sum_by_prog(self.probe.skipped, whos)
        exact = {k: tuple(v) for k, v in (switch or {}).items()}
        for key, counts in exact.items():
            self.base.setdefault(key, 0 if self.when is not None else sum(counts))

        keys = {k for k, _ in cur} | {k for k, v in exact.items() if v != self.switch.get(k)}
        rows = []
        for key in sorted(keys):
            bridge, prog_id = key
            prog = programs.get(key)
            traced = [cur.get((key, c), 0) - old.get((key, c), 0) for c in range(n_classes)]
            n_traced = sum(traced)
            delta: list[float]
            if key in exact:
                before = self.switch.get(key, (0,) * n_classes)
                now_counts = exact[key]
                if any(a < b for a, b in zip(now_counts, before, strict=True)):
                    # Unloaded and loaded again under the same id.
                    before = (0,) * n_classes
                    self.base[key] = 0
                delta = [a - b for a, b in zip(now_counts, before, strict=True)]
                total = sum(now_counts) - self.base.get(key, 0)
                estimated = False
            else:
                n_skipped = skipped.get(key, 0) - old_skipped.get(key, 0)
                scale = (n_traced + n_skipped) / n_traced if n_traced else 1.0
                delta = [n * scale for n in traced]
                total = sum(n for (k, _), n in cur.items() if k == key) + skipped.get(key, 0)
                estimated = n_skipped > 0
            dhist = {
                s: n - old_hist.get((k, s), 0)
                for (k, s), n in cur_hist.items()
                if k == key and n > old_hist.get((k, s), 0)
            }
            n_batches = batches.get(key, 0) - old_batches.get(key, 0)
            rows.append(
                TopRow(
                    bridge=bridge,
                    prog_id=prog_id,
                    name=prog.name if prog else None,
                    rates={VERDICT_CLASSES[c]: rate(delta[c]) for c in range(n_classes)},
                    runs_per_sec=rate(sum(delta)),
                    total_runs=round(total),
                    hist=dhist,
                    p50_ns=percentile(dhist, 0.5),
                    p99_ns=percentile(dhist, 0.99),
                    per_batch=n_traced / n_batches if n_batches > 0 else None,
                    estimated=estimated,
                )
            )
        self.probe = probe
        self.switch = exact
        self.when = now
        rows.sort(key=lambda r: (-r.runs_per_sec, r.bridge, r.prog_id))
        return rows


def _rate(x: float) -> str:
    if x >= 10_000_000:
        return f"{x / 1e6:.0f}M"
    if x >= 10_000:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def _ns(x: int | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.0f}us" if x >= 10_000 else f"{x}ns"


SHOWN_VERDICTS = ("pass", "drop", "tx", "redirect", "aborted", "other")


def render_top(rows: Sequence[TopRow], interval: float, histograms: bool = True) -> str:
    """okopy top's screen: one line per program, then its run-time
    histogram for the interval."""
    head = f"{'BRIDGE':<12} {'PROG':>5} {'NAME':<16} {'RUNS/s':>8} " + " ".join(
        f"{v.upper() + '/s':>9}" for v in SHOWN_VERDICTS
    ) + f" {'p50':>7} {'p99':>7} {'/BATCH':>6}"  # fmt: skip
    lines = [f"okopy top: per-program runs over the last {interval:g} s", head]
    if not rows:
        lines.append("(no program ran)")
    for r in rows:
        mark = "~" if r.estimated else ""
        lines.append(
            f"{r.bridge:<12.12} {r.prog_id:>5} {(r.name or '?'):<16.16} "
            f"{mark + _rate(r.runs_per_sec):>8} "
            + " ".join(f"{mark + _rate(r.rates.get(v, 0.0)):>9}" for v in SHOWN_VERDICTS)
            + f" {_ns(r.p50_ns):>7} {_ns(r.p99_ns):>7}"
            + f" {'-' if r.per_batch is None else f'{r.per_batch:.1f}':>6}"
        )
    if any(r.estimated for r in rows):
        lines.append(
            "~ estimated from the traced runs: the switch traces at most its "
            "bpf-trace-rate batches a second per thread"
        )
    if histograms:
        for r in rows:
            if r.hist:
                lines.append("")
                lines.append(
                    f"{r.bridge} prog {r.prog_id} ({r.name or '?'}): run time of "
                    f"{sum(r.hist.values())} traced runs"
                )
                lines += histogram_lines(r.hist)
    return "\n".join(lines)


def histogram_lines(hist: Mapping[int, int], width: int = 40) -> list[str]:
    """A log2 histogram as bcc's tools draw one: '   128 -> 255 ns : 12 |***  |'."""
    if not hist:
        return []
    top = max(hist.values())
    lo_slot, hi_slot = min(hist), max(hist)
    out = []
    for slot in range(lo_slot, hi_slot + 1):
        n = hist.get(slot, 0)
        lo, hi = slot_bounds(slot)
        bar = "*" * (round(n / top * width) if top else 0)
        out.append(f"{lo:>10} -> {hi - 1:<10} ns : {n:<9} |{bar:<{width}}|")
    return out


def top_record(rows: Sequence[TopRow], now: float) -> dict[str, Any]:
    return {
        "time": round(now, 6),
        "programs": [
            {"bridge": r.bridge, "prog_id": r.prog_id, "prog": r.name,
             "runs_per_sec": round(r.runs_per_sec, 3), "runs": r.total_runs,
             "verdicts_per_sec": {k: round(v, 3) for k, v in r.rates.items()},
             "p50_ns": r.p50_ns, "p99_ns": r.p99_ns,
             "runs_per_batch": None if r.per_batch is None else round(r.per_batch, 2),
             "estimated": r.estimated,
             "hist": {str(slot_bounds(s)[0]): n for s, n in sorted(r.hist.items())}}
            for r in rows
        ],
    }  # fmt: skip
