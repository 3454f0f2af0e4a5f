"""Prometheus metrics of the controller, declared in one place.

Rendered from plain data (the last statistics poll), so the text format is
tested without a switch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

METRICS = {
    "okopy_switch_connected": ("gauge", "1 if the switch is connected to this controller"),
    "okopy_program_runs_total": ("counter", "Times a program ran"),
    "okopy_program_verdicts_total": ("counter", "Verdicts a program returned, by verdict"),
    "okopy_program_run_seconds_total": ("counter", "Time spent running a program"),
    "okopy_program_instructions": ("gauge", "BPF instructions of a loaded program"),
    "okopy_map_entries": ("gauge", "Entries in a map at the last poll"),
    "okopy_reconciles_total": ("counter", "Reconciliations run for a switch"),
}
VERDICTS = ("aborted", "drop", "pass", "tx", "redirect", "other")


@dataclass(frozen=True)
class ProgramSample:
    dpid: int
    prog_id: int
    name: str
    n_insns: int
    runs: int
    run_nsec: int
    verdicts: tuple[int, ...]


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kv: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in kv.items()) + "}"


def render(
    connected: Mapping[int, bool],
    programs: Iterable[ProgramSample],
    map_sizes: Mapping[tuple[int, int, str], int],
    reconciles: Mapping[int, int],
) -> str:
    lines: dict[str, list[str]] = {name: [] for name in METRICS}
    for dpid, up in sorted(connected.items()):
        lines["okopy_switch_connected"].append(
            f"okopy_switch_connected{_labels(dpid=hex(dpid))} {int(up)}"
        )
    for p in programs:
        lab = {"dpid": hex(p.dpid), "prog": p.prog_id, "name": p.name}
        lines["okopy_program_runs_total"].append(
            f"okopy_program_runs_total{_labels(**lab)} {p.runs}"
        )
        lines["okopy_program_run_seconds_total"].append(
            f"okopy_program_run_seconds_total{_labels(**lab)} {p.run_nsec / 1e9:.9f}"
        )
        lines["okopy_program_instructions"].append(
            f"okopy_program_instructions{_labels(**lab)} {p.n_insns}"
        )
        for verdict, n in zip(VERDICTS, p.verdicts, strict=False):
            lines["okopy_program_verdicts_total"].append(
                f"okopy_program_verdicts_total{_labels(**lab, verdict=verdict)} {n}"
            )
    for (dpid, pid, name), n in sorted(map_sizes.items()):
        lines["okopy_map_entries"].append(
            f"okopy_map_entries{_labels(dpid=hex(dpid), prog=pid, map=name)} {n}"
        )
    for dpid, n in sorted(reconciles.items()):
        lines["okopy_reconciles_total"].append(
            f"okopy_reconciles_total{_labels(dpid=hex(dpid))} {n}"
        )
    out = []
    for name, (kind, text) in METRICS.items():
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *lines[name]]
    return "\n".join(out) + "\n"
