"""Reconciliation: from what a switch holds to what it should hold.

Pure: observed state and desired state in, intents out, in an order that is
safe to send on one OpenFlow connection (programs before the flows that use
them; flows removed before the programs they use).  Applying the intents
and reconciling again yields nothing: the switch has converged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from okopy.controller.intents import (
    AddFlow,
    DeleteFlow,
    DeleteMapEntry,
    Intent,
    LoadProgram,
    UnloadProgram,
    UpdateMap,
)
from okopy.policy.desired import COOKIE_MASK, COOKIE_OKOPY, DesiredSwitch, Flow

BPF_MAP_TYPE_ARRAY = 2


@dataclass(frozen=True)
class ObservedProgram:
    prog_id: int
    name: str
    cookie: int


@dataclass(frozen=True)
class Observed:
    """What the switch reported: its programs and its flows."""

    programs: Mapping[int, ObservedProgram] = field(default_factory=dict)
    flows: frozenset[Flow] = frozenset()

    def ours(self) -> frozenset[Flow]:
        return frozenset(f for f in self.flows if f.cookie & COOKIE_MASK == COOKIE_OKOPY)


def reconcile(
    desired: DesiredSwitch, observed: Observed, previous: DesiredSwitch | None = None
) -> list[Intent]:
    """Intents that bring the switch from 'observed' to 'desired'.

    'previous' is the desired state this controller last applied to the
    switch (None after a controller restart).  Seeds go in when a program is
    (re)loaded, which restores them after a switch restart; a program that
    is already there keeps its live map contents, except that seeds changed
    between 'previous' and 'desired' are applied (a policy reload): map by
    map, in the order 'desired' first lists them (maps it no longer has
    last), the map's entries written in the order 'desired' lists them,
    then those it no longer has deleted in the reverse of the order
    'previous' listed them (bpf/acl.c's maps rely on it: a change takes
    effect in the write of its last map, okopy.acl.compile.ordered_changes())."""
    out: list[Intent] = []
    fresh: set[int] = set()
    for pid, prog in sorted(desired.programs.items()):
        have = observed.programs.get(pid)
        if have is None or have.cookie != prog.cookie:
            out.append(LoadProgram(pid, prog.name, prog.elf, prog.cookie, have is not None))
            fresh.add(pid)
    for s in desired.seeds:
        if s.prog_id in fresh:
            out.append(UpdateMap(s.prog_id, s.map, s.key, s.value))
    if previous is not None:
        old = {(s.prog_id, s.map, s.key): s.value for s in previous.seeds}
        new = {(s.prog_id, s.map, s.key): s.value for s in desired.seeds}
        gone = dict.fromkeys(
            (s.prog_id, s.map, s.key)
            for s in reversed(previous.seeds)
            if (s.prog_id, s.map, s.key) not in new
        )
        by_map: dict[tuple[int, str], tuple[list[Intent], list[bytes]]] = {}
        for (pid, m, k), v in new.items():
            writes = by_map.setdefault((pid, m), ([], []))[0]
            if pid not in fresh and old.get((pid, m, k)) != v:
                writes.append(UpdateMap(pid, m, k, v))
        for pid, m, k in gone:
            by_map.setdefault((pid, m), ([], []))[1].append(k)
        for (pid, m), (writes, deletions) in by_map.items():
            out += writes
            if pid in fresh or pid not in desired.programs:
                continue
            mdef = desired.programs[pid].maps.get(m)
            for k in deletions:
                if mdef is not None and mdef.type == BPF_MAP_TYPE_ARRAY:
                    # An array's entries cannot be deleted: the seed's entry
                    # goes back to what it held before any seed, zeros.
                    out.append(UpdateMap(pid, m, k, bytes(mdef.value_size)))
                else:
                    out.append(DeleteMapEntry(pid, m, k, mdef.value_size if mdef else 0))

    have_flows = observed.ours()
    by_key = {f.key: f for f in have_flows}
    for f in sorted(desired.flows):
        if by_key.get(f.key) != f:
            out.append(AddFlow(f))  # Adds, or replaces one with other actions.
    wanted_keys = {f.key for f in desired.flows}
    for f in sorted(have_flows):
        if f.key not in wanted_keys:
            out.append(DeleteFlow(f))
    for pid in sorted(observed.programs.keys() - desired.programs.keys()):
        out.append(UnloadProgram(pid))
    return out
