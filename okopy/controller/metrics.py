"""Prometheus metrics of the controller, declared in one place.

Rendered with prometheus_client from plain data (a snapshot of the last
statistics poll and of the configuration's state), so the exposition is
tested without a switch.  docs/lab.md's table lists METRICS; a unit test
keeps the two equal."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from okopy.ofp.messages import VERDICT_CLASSES

METRICS = {
    "okopy_switch_connected": ("gauge", "1 if the switch is connected to this controller"),
    "okopy_program_runs_total": ("counter", "Times a program ran"),
    "okopy_program_verdicts_total": ("counter", "Verdicts a program returned, by verdict"),
    "okopy_program_run_seconds_total": ("counter", "Time spent running a program"),
    "okopy_program_instructions": ("gauge", "BPF instructions of a loaded program"),
    "okopy_map_entries": ("gauge", "Entries in a map at the last poll"),
    "okopy_map_max_entries": ("gauge", "The most entries a map can hold"),
    "okopy_map_pressure": ("gauge", "Entries in a map at the last poll over its max_entries"),
    "okopy_reconciles_total": ("counter", "Reconciliations run for a switch"),
    "okopy_controller_master": (
        "gauge",
        "1 if this controller is the master (or the only controller), 0 if it stands by",
    ),
    "okopy_config_hash": (
        "gauge",
        "1, labelled with the SHA-256 of the policy in force (its files and its programs' objects)",
    ),
    "okopy_config_load_errors_total": (
        "counter",
        "Policy loads (reloads) refused because the policy failed its checks",
    ),
    "okopy_config_applied": (
        "gauge",
        "1 if the last policy load was applied, 0 if it was refused and the one before "
        "stays in force",
    ),
}
VERDICTS = VERDICT_CLASSES


@dataclass(frozen=True)
class ProgramSample:
    dpid: int
    prog_id: int
    name: str
    n_insns: int
    runs: int
    run_nsec: int
    verdicts: tuple[int, ...]


@dataclass(frozen=True)
class MapSample:
    entries: int
    max_entries: int


@dataclass(frozen=True)
class ConfigState:
    hash: str = ""
    load_errors: int = 0
    applied: bool = True


@dataclass(frozen=True)
class Snapshot:
    connected: Mapping[int, bool] = field(default_factory=dict)
    programs: Sequence[ProgramSample] = ()
    maps: Mapping[tuple[int, int, str], MapSample] = field(default_factory=dict)
    reconciles: Mapping[int, int] = field(default_factory=dict)
    config: ConfigState = ConfigState()
    master: bool = True


def config_hash(files: Sequence[tuple[str, str]], objects: Sequence[bytes]) -> str:
    """The SHA-256 of a policy: its files' names and digests, then its
    programs' objects (a changed filter changes the hash too)."""
    h = hashlib.sha256()
    for name, digest in files:
        h.update(f"{name}\0{digest}\n".encode())
    for elf in objects:
        h.update(hashlib.sha256(elf).digest())
    return h.hexdigest()


def _family(name: str, labels: Sequence[str]) -> GaugeMetricFamily | CounterMetricFamily:
    kind, text = METRICS[name]
    if kind == "counter":
        return CounterMetricFamily(name, text, labels=labels)
    return GaugeMetricFamily(name, text, labels=labels)


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        connected = _family("okopy_switch_connected", ["dpid"])
        for dpid, up in sorted(s.connected.items()):
            connected.add_metric([hex(dpid)], int(up))
        prog = ["dpid", "prog", "name"]
        runs = _family("okopy_program_runs_total", prog)
        seconds = _family("okopy_program_run_seconds_total", prog)
        insns = _family("okopy_program_instructions", prog)
        verdicts = _family("okopy_program_verdicts_total", [*prog, "verdict"])
        for p in s.programs:
            lab = [hex(p.dpid), str(p.prog_id), p.name]
            runs.add_metric(lab, p.runs)
            seconds.add_metric(lab, p.run_nsec / 1e9)
            insns.add_metric(lab, p.n_insns)
            for verdict, n in zip(VERDICTS, p.verdicts, strict=False):
                verdicts.add_metric([*lab, verdict], n)
        mp = ["dpid", "prog", "map"]
        entries = _family("okopy_map_entries", mp)
        most = _family("okopy_map_max_entries", mp)
        pressure = _family("okopy_map_pressure", mp)
        for (dpid, pid, name), m in sorted(s.maps.items()):
            lab = [hex(dpid), str(pid), name]
            entries.add_metric(lab, m.entries)
            most.add_metric(lab, m.max_entries)
            pressure.add_metric(lab, m.entries / m.max_entries if m.max_entries else 0.0)
        reconciles = _family("okopy_reconciles_total", ["dpid"])
        for dpid, n in sorted(s.reconciles.items()):
            reconciles.add_metric([hex(dpid)], n)
        master = _family("okopy_controller_master", [])
        master.add_metric([], int(s.master))
        config_hash = _family("okopy_config_hash", ["hash"])
        if s.config.hash:
            config_hash.add_metric([s.config.hash], 1)
        errors = _family("okopy_config_load_errors_total", [])
        errors.add_metric([], s.config.load_errors)
        applied = _family("okopy_config_applied", [])
        applied.add_metric([], int(s.config.applied))
        yield from (connected, runs, verdicts, seconds, insns, entries, most, pressure,
                    reconciles, master, config_hash, errors, applied)  # fmt: skip


def render(snap: Snapshot) -> str:
    """The Prometheus text exposition of 'snap'."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap))
    return generate_latest(registry).decode()
