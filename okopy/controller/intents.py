"""What the core asks the shim to do to a switch, as plain data."""

from __future__ import annotations

from dataclasses import dataclass

from okopy.policy.desired import Flow


@dataclass(frozen=True)
class LoadProgram:
    prog_id: int
    name: str
    elf: bytes
    cookie: int
    replace: bool


@dataclass(frozen=True)
class UnloadProgram:
    prog_id: int


@dataclass(frozen=True)
class UpdateMap:
    prog_id: int
    map: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class DeleteMapEntry:
    prog_id: int
    map: str
    key: bytes
    value_size: int


@dataclass(frozen=True)
class AddFlow:
    flow: Flow


@dataclass(frozen=True)
class DeleteFlow:
    flow: Flow


Intent = LoadProgram | UnloadProgram | UpdateMap | DeleteMapEntry | AddFlow | DeleteFlow
