"""What one switch should hold: programs (with object bytes), seeds, flows.

Built from a validated policy plus the compiled programs; everything here is
plain, hashable data, so two desired states can be compared field by field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okopy.bpf.btf import Btf, BtfError, MapDef, TypedMap
from okopy.policy.file import BpfAction, FlowSpec, Policy, SwitchSpec

# Flows this controller installs carry this cookie; others are left alone.
COOKIE_OKOPY = 0x6F6B6F7079000000
COOKIE_MASK = 0xFFFFFFFFFF000000


def program_cookie(elf: bytes) -> int:
    """The cookie a program is loaded with: the start of its SHA-256."""
    return int.from_bytes(hashlib.sha256(elf).digest()[:8], "big")


@dataclass(frozen=True)
class BuiltProgram:
    """A policy program, compiled: its object, maps and their BTF."""

    name: str
    prog_id: int
    elf: bytes
    btf: Btf | None
    maps: Mapping[str, MapDef]

    @property
    def cookie(self) -> int:
        return program_cookie(self.elf)

    def typed_map(self, map_name: str) -> TypedMap:
        """Map 'map_name' with its BTF types; LookupError if there is none."""
        m = self.maps.get(map_name)
        if m is None:
            raise LookupError(
                f"program {self.name} has no map {map_name!r} "
                f"(maps: {', '.join(self.maps) or 'none'})"
            )
        return TypedMap(m.name, m.key_size, m.value_size, self.btf, m.key_type_id, m.value_type_id)

    def encode_entry(self, map_name: str, key: Any, value: Any) -> tuple[bytes, bytes]:
        """JSON key and value -> bytes, through the map's BTF types."""
        try:
            typed = self.typed_map(map_name)
        except LookupError as e:
            raise BtfError(str(e)) from None
        return typed.encode_key(key), typed.encode_value(value)

    def decode_entry(self, map_name: str, key: bytes, value: bytes) -> dict[str, Any]:
        """Bytes of an entry -> {"key": JSON, "value": JSON} (hex where BTF cannot)."""
        return self.typed_map(map_name).decode_entry(key, value)


@dataclass(frozen=True, order=True)
class Flow:
    """A flow in canonical form: equal flows compare equal."""

    table: int
    priority: int
    match: tuple[tuple[str, str], ...]
    actions: tuple[str, ...]
    cookie: int = COOKIE_OKOPY

    @property
    def key(self) -> tuple[int, int, tuple[tuple[str, str], ...]]:
        """What OpenFlow uses to tell flows apart (strict match)."""
        return (self.table, self.priority, self.match)


def canonical_value(field: str, value: Any) -> str:
    if field == "bpf_verdict":
        if value == "none":
            return "none"
        names = {"aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4}
        return str(names.get(value, value))
    if isinstance(value, int):
        return str(value)
    return str(value).lower()


def bpf_canonical(prog_id: int, table: int | None, drop_unless: int | None) -> str:
    """A bpf action as the controller compares it: "bpf:PROG[:TABLE][/VERDICT]"."""
    out = f"bpf:{prog_id}" + (f":{table}" if table is not None else "")
    return out + (f"/{drop_unless}" if drop_unless is not None else "")


def bpf_from_canonical(text: str) -> tuple[int, int | None, int | None]:
    """(prog id, table, drop_unless) from what follows "bpf:" in bpf_canonical()."""
    ids, _, keep = text.partition("/")
    prog, _, table = ids.partition(":")
    return int(prog), int(table) if table else None, int(keep) if keep else None


def canonical_action(action: Any, prog_ids: Mapping[str, int]) -> str:
    if isinstance(action, BpfAction):
        return bpf_canonical(prog_ids[action.prog], action.table, action.drop_unless)
    if isinstance(action, tuple):
        return f"{action[0]}:{action[1]}"
    return str(action)


def canonical_flow(spec: FlowSpec, prog_ids: Mapping[str, int]) -> Flow:
    return Flow(
        spec.table,
        spec.priority,
        tuple(sorted((f, canonical_value(f, v)) for f, v in spec.match)),
        tuple(canonical_action(a, prog_ids) for a in spec.actions),
        COOKIE_OKOPY | (spec.cookie & ~COOKIE_MASK),
    )


@dataclass(frozen=True)
class Seed:
    prog_id: int
    map: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class DesiredSwitch:
    dpid: int
    programs: Mapping[int, BuiltProgram]
    seeds: tuple[Seed, ...]
    flows: frozenset[Flow]


def desired_switch(
    policy: Policy, switch: SwitchSpec, built: Mapping[str, BuiltProgram]
) -> DesiredSwitch:
    """The desired state of 'switch'; raises BtfError for a bad seed."""
    progs = {built[n].prog_id: built[n] for n in switch.programs}
    ids = {n: policy.programs[n].prog_id for n in switch.programs}
    seeds = []
    for s in switch.seeds:
        prog = built[s.program]
        try:
            key, value = prog.encode_entry(s.map, s.key, s.value)
        except BtfError as e:
            raise BtfError(f"line {s.line}: {e}") from None
        seeds.append(Seed(prog.prog_id, s.map, key, value))
    flows = frozenset(canonical_flow(f, ids) for f in switch.flows)
    return DesiredSwitch(switch.dpid, progs, tuple(seeds), flows)
