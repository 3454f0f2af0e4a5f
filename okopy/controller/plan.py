"""Reconciliation intents as people read them: `okopy policy diff` and the
controller's log.

Pure: an intent, the desired state it comes from and the observed state it
applies to, in; a JSON-able change out.  Map entries are typed through the
program's BTF as everywhere else; flows are written in ovs-ofctl's syntax.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from okopy.bpf.btf import decode_or_hex
from okopy.controller.intents import (
    AddFlow,
    DeleteFlow,
    DeleteMapEntry,
    Intent,
    LoadProgram,
    UnloadProgram,
    UpdateMap,
)
from okopy.controller.reconcile import Observed
from okopy.ofp.action import BpfAction, verdict_name
from okopy.policy.desired import DesiredSwitch, Flow

_HEX_FIELDS = ("eth_type",)


def flow_text(flow: Flow) -> str:
    """'flow' as ovs-ofctl writes it: `table=1,priority=100,bpf_verdict=pass
    actions=NORMAL`."""
    match = [f"{name}={_field_text(name, value)}" for name, value in flow.match]
    head = ",".join([f"table={flow.table}", f"priority={flow.priority}", *match])
    return f"{head} actions={','.join(_action_text(a) for a in flow.actions) or 'drop'}"


def _field_text(name: str, value: str) -> str:
    if name in _HEX_FIELDS and value.isdigit():
        return f"{int(value):#06x}"
    if name == "bpf_verdict":
        return verdict_name(int(value)) if value.isdigit() else value
    return value


def _action_text(action: str) -> str:
    kind, _, rest = action.partition(":")
    if kind == "bpf":
        return str(BpfAction.from_canonical(rest))
    if kind == "goto_table":
        return f"goto_table:{rest}"
    if kind == "output":
        return f"output:{rest}"
    return kind.upper() if kind in ("normal", "controller", "flood", "in_port") else kind


def describe(step: Intent, desired: DesiredSwitch, observed: Observed) -> dict[str, Any]:
    """One intent as a change: {"change": what, ...its details}.

    'desired' is the DesiredSwitch the intent comes from (its programs type
    the map entries)."""
    if isinstance(step, LoadProgram):
        change = "replace program" if step.replace else "load program"
        return {"change": change, "prog": step.prog_id, "name": step.name}
    if isinstance(step, UnloadProgram):
        have = observed.programs.get(step.prog_id)
        return {
            "change": "unload program",
            "prog": step.prog_id,
            "name": have.name if have else "",
        }
    if isinstance(step, UpdateMap):
        prog = desired.programs[step.prog_id]
        return {
            "change": "write map entry",
            "prog": step.prog_id,
            "map": step.map,
            **prog.decode_entry(step.map, step.key, step.value),
        }
    if isinstance(step, DeleteMapEntry):
        prog = desired.programs[step.prog_id]
        mdef = prog.maps.get(step.map)
        key = decode_or_hex(prog.btf, mdef.key_type_id if mdef else 0, step.key)
        return {"change": "delete map entry", "prog": step.prog_id, "map": step.map, "key": key}
    if isinstance(step, AddFlow):
        had = any(f.key == step.flow.key for f in observed.ours())
        return {"change": "change flow" if had else "add flow", "flow": flow_text(step.flow)}
    if isinstance(step, DeleteFlow):
        return {"change": "delete flow", "flow": flow_text(step.flow)}
    raise TypeError(f"not an intent: {step!r}")


def summary(changes: Sequence[dict[str, Any]]) -> str:
    """'2 add flow, 1 load program', or 'nothing to do'."""
    kinds: dict[str, int] = {}
    for c in changes:
        kinds[c["change"]] = kinds.get(c["change"], 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing to do"


def change_text(change: dict[str, Any]) -> str:
    """One change on one line, for a terminal."""
    c = change["change"]
    if "flow" in change:
        return f"{c}: {change['flow']}"
    if c.endswith("map entry"):
        entry = f"key {_json(change['key'])}"
        if "value" in change:
            entry += f" value {_json(change['value'])}"
        return f"{c}: program {change['prog']} map {change['map']} {entry}"
    return f"{c} {change['prog']}" + (f" ({change['name']})" if change.get("name") else "")


def _json(v: Any) -> str:
    return json.dumps(v, separators=(", ", ": "))
