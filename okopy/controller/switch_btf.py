"""The types of the maps of programs that the policy does not have.

A program loaded with `ovs-ofctl load-bpf-prog` (or by anyone but this
controller) has no object in the policy to read its maps' BTF from; the
switch keeps that BTF and gives it (`OKOPYT_MAP_BTF_REQUEST`, in chunks).
`fetch_btf()` reads it through a request function; `SwitchMaps` keeps what
was read per switch, program id and map, for as long as the program stays
the same load.

Whether it is the same load is told from the program's statistics, which
the controller asks for before each use (one small request): its name,
cookie and instruction count, and when it was loaded (now minus
`duration_sec`, which a replace restarts from 0; whole seconds).  A load
that is younger than `MIN_AGE` seconds is never kept, so that a replace
that follows within the same second or two cannot pass for the load it
replaced.  A switch that disconnects or reconnects, or a program this
controller loads or unloads, drops what was kept for it.

Pure but for the request function `fetch_btf()` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from okopy.bpf.btf import Btf, BtfError, TypedMap
from okopy.ofp import messages as m

MIN_AGE = 3  # seconds a load must have run before its maps' types are kept
SLACK = 2.0  # seconds two estimates of one load's time may differ by
MAX_BTF = 16 << 20  # bytes of BTF the controller reads for one map
MAX_CHUNKS = 4096


@dataclass(frozen=True)
class LoadedProgram:
    """What tells one load of a program id from the next."""

    name: str
    cookie: int
    n_insns: int
    loaded_at: float  # on the clock of 'now' below
    age: int  # duration_sec when seen

    @classmethod
    def of(cls, stats: m.ProgStats, now: float) -> LoadedProgram:
        return cls(stats.name, stats.cookie, stats.n_insns, now - stats.duration_sec,
                   stats.duration_sec)  # fmt: skip

    def same_load(self, other: LoadedProgram) -> bool:
        return (self.name, self.cookie, self.n_insns) == (
            other.name,
            other.cookie,
            other.n_insns,
        ) and abs(self.loaded_at - other.loaded_at) <= SLACK


@dataclass
class _Kept:
    program: LoadedProgram
    maps: dict[str, TypedMap] = field(default_factory=dict)


class SwitchMaps:
    """Maps' types read from switches, by (dpid, program id, map name)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], _Kept] = {}

    def get(self, dpid: int, prog_id: int, program: LoadedProgram, name: str) -> TypedMap | None:
        kept = self._kept.get((dpid, prog_id))
        if kept is None:
            return None
        if not kept.program.same_load(program):
            del self._kept[dpid, prog_id]  # replaced, or unloaded and loaded again
            return None
        return kept.maps.get(name)

    def put(self, dpid: int, prog_id: int, program: LoadedProgram, typed: TypedMap) -> None:
        """Keep 'typed' for 'program' (unless the load is too young to tell
        from the next); its maps share one parsed BTF when theirs is equal."""
        if program.age < MIN_AGE:
            return
        kept = self._kept.get((dpid, prog_id))
        if kept is None or not kept.program.same_load(program):
            kept = self._kept[dpid, prog_id] = _Kept(program)
        if typed.btf is not None:
            same = next((t.btf for t in kept.maps.values() if t.btf == typed.btf), None)
            if same is not None:
                typed = dataclasses.replace(typed, btf=same)
        kept.maps[typed.name] = typed

    def forget(self, dpid: int, prog_id: int | None = None) -> None:
        """Drop what is kept for a switch, or for one program of it."""
        for key in [k for k in self._kept if k[0] == dpid and prog_id in (None, k[1])]:
            del self._kept[key]

    def __len__(self) -> int:
        return sum(len(k.maps) for k in self._kept.values())


class BtfChanged(ConnectionError):
    """The program changed while its BTF was being read: try again."""


def fetch_btf(
    request: Callable[[m.Message], m.Message], prog_id: int, map_name: str
) -> m.MapBtfReply:
    """The whole BTF of a map, read chunk by chunk through 'request' (which
    sends a message to the switch and returns its reply); the reply's
    `chunk` is all of it.  Raises BtfChanged when the switch's answers
    disagree (the program was replaced meanwhile), ValueError for BTF over
    MAX_BTF bytes or answers that do not make progress."""
    first: m.MapBtfReply | None = None
    blob = bytearray()
    for _ in range(MAX_CHUNKS):
        reply = request(m.MapBtfRequest(prog_id, map_name, len(blob)))
        if not isinstance(reply, m.MapBtfReply):
            raise ValueError(f"map {map_name}: {type(reply).__name__} answers a BTF request")
        if first is None:
            first = reply
            if reply.btf_len > MAX_BTF:
                raise ValueError(
                    f"map {map_name}: its BTF has {reply.btf_len} bytes, over the "
                    f"controller's limit of {MAX_BTF}"
                )
        elif (reply.btf_len, reply.key_type_id, reply.value_type_id) != (
            first.btf_len,
            first.key_type_id,
            first.value_type_id,
        ):
            raise BtfChanged(f"program {prog_id} changed while its BTF was read; try again")
        if reply.offset != len(blob):
            raise ValueError(f"map {map_name}: BTF chunk at {reply.offset}, asked {len(blob)}")
        blob += reply.chunk
        if len(blob) >= first.btf_len:
            if len(blob) > first.btf_len:
                raise ValueError(f"map {map_name}: more BTF than the {first.btf_len} bytes said")
            return dataclasses.replace(first, offset=0, chunk=bytes(blob))
        if not reply.chunk:
            raise ValueError(f"map {map_name}: an empty BTF chunk at {len(blob)}")
    raise ValueError(f"map {map_name}: BTF in more than {MAX_CHUNKS} chunks")


def typed_map(desc: m.MapDesc, btf: m.MapBtfReply) -> tuple[TypedMap, str | None]:
    """Map 'desc' typed by the switch's BTF reply; without usable BTF the
    entries are hex, and the second item says why (None: typed)."""
    untyped = TypedMap(desc.name, desc.key_size, desc.value_size)
    if not btf.chunk:
        return untyped, "no BTF"
    try:
        parsed = Btf.parse(btf.chunk)
        for type_id, size, what in (
            (btf.key_type_id, desc.key_size, "key"),
            (btf.value_type_id, desc.value_size, "value"),
        ):
            if type_id and parsed.size_of(type_id) != size:
                raise BtfError(f"the {what} type has {parsed.size_of(type_id)} bytes, not {size}")
    except BtfError as e:
        return untyped, f"BTF refused: {e}"
    return TypedMap(desc.name, desc.key_size, desc.value_size, parsed, btf.key_type_id,
                    btf.value_type_id), None  # fmt: skip
