"""The extension's messages: one small class each, wire format in one place.

`body()` gives the bytes after the experimenter header (zero-padded to a
multiple of 8), `decode(body)` reads them back and raises OfpDecodeError,
naming the message and the problem, on anything malformed.  `frame()`
wraps a body into a whole OpenFlow 1.3 experimenter message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from okopy.ofp.constants import (
    LIST_REPLY_MORE,
    OKOPY_NAME_LEN,
    OKOPY_PROG_CHUNK_MAX,
    OKOPY_VENDOR_ID,
    TEXT_ERRORS,
    ErrorType,
    MsgType,
)

OFP13_VERSION = 4
OFPT_EXPERIMENTER = 4
OFPT_ERROR = 1
OFPET_EXPERIMENTER = 0xFFFF
OFP_HEADER = struct.Struct("!BBHI")
EXPERIMENTER_HEADER = struct.Struct("!II")


class OfpDecodeError(ValueError):
    """A malformed extension message."""


def pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _put_name(name: str, what: str) -> bytes:
    raw = name.encode()
    if len(raw) > OKOPY_NAME_LEN:
        raise ValueError(f"{what} {name!r} is longer than {OKOPY_NAME_LEN} bytes")
    return raw


def frame(msg_type: int, body: bytes, xid: int = 0, version: int = OFP13_VERSION) -> bytes:
    """A whole OpenFlow experimenter message carrying 'body'."""
    length = OFP_HEADER.size + EXPERIMENTER_HEADER.size + len(body)
    return (
        OFP_HEADER.pack(version, OFPT_EXPERIMENTER, length, xid)
        + EXPERIMENTER_HEADER.pack(OKOPY_VENDOR_ID, msg_type)
        + body
    )


class Message:
    TYPE: ClassVar[MsgType]

    def body(self) -> bytes:
        raise NotImplementedError

    def frame(self, xid: int = 0) -> bytes:
        return frame(self.TYPE, self.body(), xid)


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise OfpDecodeError(f"{what}: {len(body)} bytes, shorter than its {size}-byte header")


@dataclass(frozen=True)
class ProgLoad(Message):
    """One chunk of a program load: `ovs-ofctl load-bpf-prog SWITCH ID FILE`."""

    TYPE: ClassVar[MsgType] = MsgType.PROG_LOAD
    FMT: ClassVar[struct.Struct] = struct.Struct("!IH2xIII4xQ32s")
    prog_id: int
    flags: int
    elf_len: int
    offset: int
    chunk: bytes
    name: str = ""
    cookie: int = 0

    def body(self) -> bytes:
        head = self.FMT.pack(
            self.prog_id,
            self.flags,
            self.elf_len,
            self.offset,
            len(self.chunk),
            self.cookie,
            _put_name(self.name, "program name"),
        )
        return pad8(head + self.chunk)

    @classmethod
    def decode(cls, body: bytes) -> ProgLoad:
        _need(body, cls.FMT.size, "program load")
        pid, flags, elf_len, off, clen, cookie, name = cls.FMT.unpack_from(body)
        if cls.FMT.size + clen > len(body):
            raise OfpDecodeError(f"program load: chunk_len {clen} runs past the message")
        chunk = body[cls.FMT.size : cls.FMT.size + clen]
        return cls(pid, flags, elf_len, off, chunk, _name(name), cookie)

    @classmethod
    def chunks(
        cls,
        prog_id: int,
        elf: bytes,
        name: str = "",
        flags: int = 0,
        size: int = OKOPY_PROG_CHUNK_MAX,
        cookie: int = 0,
    ) -> Iterator[ProgLoad]:
        """The messages that load 'elf', in order."""
        if not elf:
            raise ValueError("empty ELF object")
        for off in range(0, len(elf), size):
            yield cls(prog_id, flags, len(elf), off, elf[off : off + size], name, cookie)


@dataclass(frozen=True)
class MapDesc:
    """A map of a loaded program, with its entries when the switch replied."""

    FMT: ClassVar[struct.Struct] = struct.Struct("!32sIIIIIII4x")
    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    flags: int
    n_entries: int = 0

    def pack(self) -> bytes:
        return self.FMT.pack(
            _put_name(self.name, "map name"),
            self.map_type,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.map_flags,
            self.flags,
            self.n_entries,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> MapDesc:
        name, *rest = cls.FMT.unpack(raw)
        return cls(_name(name), *rest)


def _map_descs(raw: bytes, what: str) -> tuple[MapDesc, ...]:
    size = MapDesc.FMT.size
    if len(raw) % size:
        raise OfpDecodeError(
            f"{what}: {len(raw)} bytes of map descriptions, not a multiple of {size}"
        )
    return tuple(MapDesc.unpack(raw[i : i + size]) for i in range(0, len(raw), size))


@dataclass(frozen=True)
class ProgLoadReply(Message):
    TYPE: ClassVar[MsgType] = MsgType.PROG_LOAD_REPLY
    FMT: ClassVar[struct.Struct] = struct.Struct("!IIB7x")
    prog_id: int
    n_insns: int
    exec_mode: int
    maps: tuple[MapDesc, ...] = ()

    def body(self) -> bytes:
        head = self.FMT.pack(self.prog_id, self.n_insns, self.exec_mode)
        return head + b"".join(m.pack() for m in self.maps)

    @classmethod
    def decode(cls, body: bytes) -> ProgLoadReply:
        _need(body, cls.FMT.size, "program load reply")
        pid, n, mode = cls.FMT.unpack_from(body)
        return cls(pid, n, mode, _map_descs(body[cls.FMT.size :], "program load reply"))


@dataclass(frozen=True)
class _ProgId(Message):
    FMT: ClassVar[struct.Struct] = struct.Struct("!I4x")
    prog_id: int

    def body(self) -> bytes:
        return self.FMT.pack(self.prog_id)

    @classmethod
    def decode(cls, body: bytes) -> _ProgId:
        _need(body, cls.FMT.size, cls.__name__)
        return cls(*cls.FMT.unpack_from(body))


@dataclass(frozen=True)
class ProgUnload(_ProgId):
    TYPE: ClassVar[MsgType] = MsgType.PROG_UNLOAD


@dataclass(frozen=True)
class ProgUnloadReply(_ProgId):
    TYPE: ClassVar[MsgType] = MsgType.PROG_UNLOAD_REPLY


@dataclass(frozen=True)
class MapListRequest(_ProgId):
    """The maps of a program and their entry counts: `ovs-ofctl dump-bpf-maps SWITCH ID`."""

    TYPE: ClassVar[MsgType] = MsgType.MAP_LIST_REQUEST


@dataclass(frozen=True)
class MapListReply(Message):
    TYPE: ClassVar[MsgType] = MsgType.MAP_LIST_REPLY
    FMT: ClassVar[struct.Struct] = struct.Struct("!I4x")
    prog_id: int
    maps: tuple[MapDesc, ...] = ()

    def body(self) -> bytes:
        return self.FMT.pack(self.prog_id) + b"".join(m.pack() for m in self.maps)

    @classmethod
    def decode(cls, body: bytes) -> MapListReply:
        _need(body, cls.FMT.size, "map list reply")
        (pid,) = cls.FMT.unpack_from(body)
        return cls(pid, _map_descs(body[cls.FMT.size :], "map list reply"))


@dataclass(frozen=True)
class ProgListRequest(Message):
    TYPE: ClassVar[MsgType] = MsgType.PROG_LIST_REQUEST
    FMT: ClassVar[struct.Struct] = struct.Struct("!IH2x")
    start_id: int = 0
    max_progs: int = 0

    def body(self) -> bytes:
        return self.FMT.pack(self.start_id, self.max_progs)

    @classmethod
    def decode(cls, body: bytes) -> ProgListRequest:
        _need(body, cls.FMT.size, "program list request")
        return cls(*cls.FMT.unpack_from(body))


# What each counter of ProgStats.verdicts counts: the XDP verdicts 0-4, then
# every other value.
VERDICT_CLASSES = ("aborted", "drop", "pass", "tx", "redirect", "other")


@dataclass(frozen=True)
class ProgStats:
    FMT: ClassVar[struct.Struct] = struct.Struct("!II32sB3xIQQQQQQQQQ")
    prog_id: int
    n_insns: int
    name: str
    exec_mode: int
    duration_sec: int
    cookie: int
    n_runs: int
    run_nsec: int
    verdicts: tuple[int, int, int, int, int, int]  # by VERDICT_CLASSES

    def pack(self) -> bytes:
        return self.FMT.pack(
            self.prog_id,
            self.n_insns,
            _put_name(self.name, "program name"),
            self.exec_mode,
            self.duration_sec,
            self.cookie,
            self.n_runs,
            self.run_nsec,
            *self.verdicts,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> ProgStats:
        pid, n, name, mode, dur, cookie, runs, ns, *v = cls.FMT.unpack(raw)
        return cls(pid, n, _name(name), mode, dur, cookie, runs, ns, tuple(v))


@dataclass(frozen=True)
class ProgListReply(Message):
    TYPE: ClassVar[MsgType] = MsgType.PROG_LIST_REPLY
    FMT: ClassVar[struct.Struct] = struct.Struct("!H6x")
    flags: int
    programs: tuple[ProgStats, ...] = ()

    @property
    def more(self) -> bool:
        return bool(self.flags & LIST_REPLY_MORE)

    def body(self) -> bytes:
        return self.FMT.pack(self.flags) + b"".join(p.pack() for p in self.programs)

    @classmethod
    def decode(cls, body: bytes) -> ProgListReply:
        _need(body, cls.FMT.size, "program list reply")
        (flags,) = cls.FMT.unpack_from(body)
        rest = body[cls.FMT.size :]
        size = ProgStats.FMT.size
        if len(rest) % size:
            raise OfpDecodeError(
                f"program list reply: {len(rest)} bytes of entries, not a multiple of {size}"
            )
        return cls(
            flags,
            tuple(ProgStats.unpack(rest[i : i + size]) for i in range(0, len(rest), size)),
        )


@dataclass(frozen=True)
class _MapMsg(Message):
    """okopy_map_ref + keys or entries (see okopy-ext.h for each type)."""

    FMT: ClassVar[struct.Struct] = struct.Struct("!IIHHH2x32s")
    HAS_VALUES: ClassVar[bool] = False
    prog_id: int
    map: str
    key_size: int
    value_size: int
    count: int = 0
    flags: int = 0
    keys: tuple[bytes, ...] = ()
    values: tuple[bytes, ...] = field(default=())

    def body(self) -> bytes:
        items = b""
        for i, k in enumerate(self.keys):
            if len(k) != self.key_size:
                raise ValueError(f"key {k.hex()} is not {self.key_size} bytes")
            items += k
            if self.HAS_VALUES:
                v = self.values[i]
                if len(v) != self.value_size:
                    raise ValueError(f"value {v.hex()} is not {self.value_size} bytes")
                items += v
        head = self.FMT.pack(
            self.prog_id,
            self.count,
            self.key_size,
            self.value_size,
            self.flags,
            _put_name(self.map, "map name"),
        )
        return pad8(head + items)

    @classmethod
    def decode(cls, body: bytes) -> _MapMsg:
        _need(body, cls.FMT.size, cls.__name__)
        pid, count, ks, vs, flags, name = cls.FMT.unpack_from(body)
        rest = body[cls.FMT.size :]
        n = cls.n_items(count, len(rest) // max(ks + (vs if cls.HAS_VALUES else 0), 1))
        step = ks + (vs if cls.HAS_VALUES else 0)
        if n * step > len(rest):
            raise OfpDecodeError(
                f"{cls.__name__}: {n} items of {step} bytes do not fit in {len(rest)} bytes"
            )
        keys = tuple(rest[i * step : i * step + ks] for i in range(n))
        values = (
            tuple(rest[i * step + ks : (i + 1) * step] for i in range(n)) if cls.HAS_VALUES else ()
        )
        return cls(pid, _name(name), ks, vs, count, flags, keys, values)

    @classmethod
    def n_items(cls, count: int, fit: int) -> int:
        """How many keys/entries follow the header."""
        return count


@dataclass(frozen=True)
class MapLookupRequest(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_LOOKUP_REQUEST


@dataclass(frozen=True)
class MapLookupReply(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_LOOKUP_REPLY
    HAS_VALUES: ClassVar[bool] = True


@dataclass(frozen=True)
class MapUpdate(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_UPDATE
    HAS_VALUES: ClassVar[bool] = True


@dataclass(frozen=True)
class MapUpdateReply(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_UPDATE_REPLY

    @classmethod
    def n_items(cls, count: int, fit: int) -> int:
        return 0


@dataclass(frozen=True)
class MapDelete(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_DELETE


@dataclass(frozen=True)
class MapDeleteReply(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_DELETE_REPLY

    @classmethod
    def n_items(cls, count: int, fit: int) -> int:
        return 0


@dataclass(frozen=True)
class MapDumpRequest(_MapMsg):
    """No key: from the start; one key: continue after it; count = max entries."""

    TYPE: ClassVar[MsgType] = MsgType.MAP_DUMP_REQUEST

    @classmethod
    def n_items(cls, count: int, fit: int) -> int:
        return min(fit, 1)


@dataclass(frozen=True)
class MapDumpReply(_MapMsg):
    TYPE: ClassVar[MsgType] = MsgType.MAP_DUMP_REPLY
    HAS_VALUES: ClassVar[bool] = True

    @property
    def more(self) -> bool:
        return bool(self.flags & LIST_REPLY_MORE)


@dataclass(frozen=True)
class _MapBtf(Message):
    """okopy_map_btf: a map's BTF, read in chunks (see okopy-ext.h)."""

    FMT: ClassVar[struct.Struct] = struct.Struct("!IIIIII32s")
    prog_id: int
    map: str
    offset: int = 0
    btf_len: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    chunk: bytes = b""

    def body(self) -> bytes:
        head = self.FMT.pack(
            self.prog_id,
            self.offset,
            self.btf_len,
            len(self.chunk),
            self.key_type_id,
            self.value_type_id,
            _put_name(self.map, "map name"),
        )
        return pad8(head + self.chunk)

    @classmethod
    def decode(cls, body: bytes) -> _MapBtf:
        _need(body, cls.FMT.size, cls.__name__)
        pid, off, btf_len, clen, key_t, value_t, name = cls.FMT.unpack_from(body)
        if cls.FMT.size + clen > len(body):
            raise OfpDecodeError(f"{cls.__name__}: chunk_len {clen} runs past the message")
        chunk = body[cls.FMT.size : cls.FMT.size + clen]
        return cls(pid, _name(name), off, btf_len, key_t, value_t, chunk)


@dataclass(frozen=True)
class MapBtfRequest(_MapBtf):
    """A map's BTF from 'offset' on: what `ovs-ofctl dump-bpf-map` asks first."""

    TYPE: ClassVar[MsgType] = MsgType.MAP_BTF_REQUEST


@dataclass(frozen=True)
class MapBtfReply(_MapBtf):
    TYPE: ClassVar[MsgType] = MsgType.MAP_BTF_REPLY


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        ProgLoad,
        ProgLoadReply,
        ProgUnload,
        ProgUnloadReply,
        ProgListRequest,
        ProgListReply,
        MapLookupRequest,
        MapLookupReply,
        MapUpdate,
        MapUpdateReply,
        MapDelete,
        MapDeleteReply,
        MapDumpRequest,
        MapDumpReply,
        MapListRequest,
        MapListReply,
        MapBtfRequest,
        MapBtfReply,
    )
}


def decode(msg_type: int, body: bytes) -> Message:
    cls = MESSAGES.get(msg_type)
    if cls is None:
        raise OfpDecodeError(f"unknown okopy message subtype {msg_type}")
    return cls.decode(body)  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class ExtError:
    """An okopy experimenter error: its type and its text or request bytes."""

    error: ErrorType | int
    data: bytes

    @property
    def text(self) -> str | None:
        if self.error in TEXT_ERRORS:
            return self.data.rstrip(b"\0").decode("utf-8", "replace")
        return None

    def __str__(self) -> str:
        name = self.error.name if isinstance(self.error, ErrorType) else str(self.error)
        return f"OKOPYBPF_{name}" + (f": {self.text}" if self.text else "")


def decode_error(exp_type: int, experimenter: int, data: bytes) -> ExtError | None:
    """An OFPET_EXPERIMENTER error of ours, or None if it is someone else's."""
    if experimenter != OKOPY_VENDOR_ID:
        return None
    try:
        kind: ErrorType | int = ErrorType(exp_type)
    except ValueError:
        kind = exp_type
    return ExtError(kind, data)
