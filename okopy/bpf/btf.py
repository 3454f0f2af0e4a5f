"""BTF: read a program's type information and convert map keys and values.

Pure logic: bytes in, Python values out.  A map's key and value types come
from the object's BTF; `decode()` turns raw bytes into JSON-ready values
and `encode()` does the reverse, so maps can be read and written as
`{"saddr": "10.0.0.1", "port": 80}` rather than hex.

Conventions for integers (BTF has no notion of byte order):
- little-endian (host order) by default;
- typedefs named `__be16`, `__be32`, `__be64` (or `okopy_be*`) are network
  order: shown as the number they carry (port 80 is 80);
- typedef `okopy_ipv4_t` (a `__be32`) is shown as a dotted quad, and
  `okopy_ipv6_t` (16 bytes) and `okopy_mac_t` (6 bytes) as addresses.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

BTF_MAGIC = 0xEB9F

# Kinds (linux/btf.h).
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19

KIND_NAMES = {
    0: "void", INT: "int", PTR: "ptr", ARRAY: "array", STRUCT: "struct",
    UNION: "union", ENUM: "enum", FWD: "fwd", TYPEDEF: "typedef",
    VOLATILE: "volatile", CONST: "const", RESTRICT: "restrict", FUNC: "func",
    FUNC_PROTO: "func_proto", VAR: "var", DATASEC: "datasec", FLOAT: "float",
    DECL_TAG: "decl_tag", TYPE_TAG: "type_tag", ENUM64: "enum64",
}  # fmt: skip

INT_SIGNED = 1 << 0
INT_CHAR = 1 << 1
INT_BOOL = 1 << 2

BIG_ENDIAN_TYPEDEFS = {"__be16", "__be32", "__be64", "okopy_be16", "okopy_be32",
                       "okopy_be64"}  # fmt: skip
ADDRESS_TYPEDEFS = {"okopy_ipv4_t": 4, "okopy_ipv6_t": 16, "okopy_mac_t": 6}


class BtfError(ValueError):
    """Malformed BTF, or a value that does not fit its type."""


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int


@dataclass(frozen=True)
class BtfType:
    """One BTF type; 'ref' is the referenced type id where the kind has one."""

    type_id: int
    kind: int
    name: str
    size: int = 0
    ref: int = 0
    members: tuple[Member, ...] = ()
    # INT: (encoding, bit offset, bits); ARRAY: (index type, nelems).
    extra: tuple[int, ...] = ()
    enum_values: tuple[tuple[str, int], ...] = ()

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind{self.kind}")


@dataclass
class Btf:
    """The types of one BTF blob, indexed by type id (0 is void)."""

    types: list[BtfType] = field(default_factory=list)

    @classmethod
    def parse(cls, blob: bytes) -> Btf:
        if len(blob) < 24:
            raise BtfError(f"BTF is {len(blob)} bytes, shorter than its header")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", blob)
        if magic != BTF_MAGIC:
            raise BtfError(f"bad BTF magic {magic:#x} (big-endian BTF unsupported)")
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        base = hdr_len
        if base + max(type_off + type_len, str_off + str_len) > len(blob):
            raise BtfError("BTF sections run past the end of the data")
        strings = blob[base + str_off : base + str_off + str_len]
        data = blob[base + type_off : base + type_off + type_len]
        return cls(_parse_types(data, strings))

    def __getitem__(self, type_id: int) -> BtfType:
        try:
            return self.types[type_id]
        except IndexError:
            raise BtfError(f"no BTF type {type_id}") from None

    def resolve(self, type_id: int) -> BtfType:
        """Skip modifiers (const, volatile, ...) but not typedefs."""
        t = self[type_id]
        seen = 0
        while t.kind in (VOLATILE, CONST, RESTRICT, TYPE_TAG):
            t = self[t.ref]
            seen += 1
            if seen > 64:
                raise BtfError(f"BTF type {type_id}: modifier loop")
        return t

    def strip(self, type_id: int) -> BtfType:
        """Skip modifiers and typedefs down to the underlying type."""
        t = self.resolve(type_id)
        seen = 0
        while t.kind == TYPEDEF:
            t = self.resolve(t.ref)
            seen += 1
            if seen > 64:
                raise BtfError(f"BTF type {type_id}: typedef loop")
        return t

    def size_of(self, type_id: int) -> int:
        t = self.strip(type_id)
        if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return t.size
        if t.kind == PTR:
            return 8
        if t.kind == ARRAY:
            return self.size_of(t.ref) * t.extra[1]
        raise BtfError(f"BTF type {type_id} ({t.kind_name}) has no size")

    def by_name(self, name: str) -> BtfType | None:
        for t in self.types:
            if t.name == name:
                return t
        return None

    def type_name(self, type_id: int) -> str:
        """A C-like spelling of 'type_id' for messages."""
        t = self[type_id]
        if t.kind in (STRUCT, UNION, ENUM, ENUM64):
            return f"{t.kind_name.rstrip('64')} {t.name or '(anon)'}"
        if t.kind in (VOLATILE, CONST, RESTRICT):
            return f"{t.kind_name} {self.type_name(t.ref)}"
        if t.kind == PTR:
            return f"{self.type_name(t.ref)} *"
        if t.kind == ARRAY:
            return f"{self.type_name(t.ref)}[{t.extra[1]}]"
        return t.name or t.kind_name

    # Values ------------------------------------------------------------------

    def decode(self, type_id: int, data: bytes) -> Any:
        """Turn 'data' (exactly the type's size) into a JSON-ready value."""
        size = self.size_of(type_id)
        if len(data) != size:
            raise BtfError(f"{self.type_name(type_id)} is {size} bytes, got {len(data)}")
        return self._decode(type_id, data, 0)

    def encode(self, type_id: int, value: Any) -> bytes:
        """Turn a JSON-ready 'value' into the bytes of 'type_id'."""
        buf = bytearray(self.size_of(type_id))
        self._encode(type_id, value, buf, 0, self.type_name(type_id))
        return bytes(buf)

    def _special(self, type_id: int) -> str | None:
        """The convention a typedef chain selects, if any."""
        t = self.resolve(type_id)
        while t.kind == TYPEDEF:
            if t.name in ADDRESS_TYPEDEFS or t.name in BIG_ENDIAN_TYPEDEFS:
                return t.name
            t = self.resolve(t.ref)
        return None

    def _decode(self, type_id: int, data: bytes, off: int) -> Any:
        special = self._special(type_id)
        t = self.strip(type_id)
        size = self.size_of(type_id)
        raw = data[off : off + size]
        if special in ADDRESS_TYPEDEFS and len(raw) == ADDRESS_TYPEDEFS[special]:
            if special == "okopy_mac_t":
                return ":".join(f"{b:02x}" for b in raw)
            return str(ipaddress.ip_address(raw))
        if t.kind in (INT, ENUM, ENUM64):
            order: Literal["big", "little"] = "big" if special in BIG_ENDIAN_TYPEDEFS else "little"
            signed = bool(t.kind == INT and t.extra[0] & INT_SIGNED) or (
                t.kind in (ENUM, ENUM64) and any(v < 0 for _, v in t.enum_values)
            )
            n = int.from_bytes(raw, order, signed=signed)
            if t.kind == INT and t.extra[0] & INT_BOOL:
                return bool(n)
            if t.kind in (ENUM, ENUM64):
                for name, v in t.enum_values:
                    if v == n:
                        return name
            return n
        if t.kind == FLOAT:
            fmt = {4: "<f", 8: "<d"}.get(t.size)
            if fmt is None:
                return raw.hex()
            return struct.unpack(fmt, raw)[0]
        if t.kind == ARRAY:
            elem = t.ref
            esize = self.size_of(elem)
            et = self.strip(elem)
            if et.kind == INT and esize == 1 and _is_char(et):
                return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            if et.kind == INT and esize == 1:
                return raw.hex()
            return [self._decode(elem, data, off + i * esize) for i in range(t.extra[1])]
        if t.kind in (STRUCT, UNION):
            out: dict[str, Any] = {}
            for i, m in enumerate(t.members):
                name = m.name or f"_{i}"
                if m.bitfield_size:
                    word = int.from_bytes(raw, "little")
                    out[name] = (word >> m.bit_offset) & ((1 << m.bitfield_size) - 1)
                elif m.bit_offset % 8:
                    raise BtfError(f"member {name}: unaligned non-bitfield")
                else:
                    out[name] = self._decode(m.type_id, data, off + m.bit_offset // 8)
            return out
        if t.kind == PTR:
            return int.from_bytes(raw, "little")
        raise BtfError(f"cannot decode {self.type_name(type_id)}")

    def _encode(self, type_id: int, value: Any, buf: bytearray, off: int, path: str) -> None:
        special = self._special(type_id)
        t = self.strip(type_id)
        size = self.size_of(type_id)
        if special in ADDRESS_TYPEDEFS and size == ADDRESS_TYPEDEFS[special]:
            buf[off : off + size] = _address_bytes(special, value, path)
            return
        if t.kind in (INT, ENUM, ENUM64, PTR):
            if t.kind in (ENUM, ENUM64) and isinstance(value, str):
                names = dict(t.enum_values)
                if value not in names:
                    raise BtfError(f"{path}: {value!r} is not one of {', '.join(names)}")
                value = names[value]
            if isinstance(value, bool):
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value, 0)
                except ValueError:
                    raise BtfError(f"{path}: expected an integer, got {value!r}") from None
            if not isinstance(value, int):
                raise BtfError(f"{path}: expected an integer, got {value!r}")
            signed = t.kind == INT and bool(t.extra[0] & INT_SIGNED)
            order: Literal["big", "little"] = "big" if special in BIG_ENDIAN_TYPEDEFS else "little"
            lo = -(1 << (8 * size - 1)) if signed else 0
            hi = (1 << (8 * size - (1 if signed else 0))) - 1
            if t.kind in (ENUM, ENUM64) and value < 0:
                lo = -(1 << (8 * size - 1))
                signed = True
            if not lo <= value <= hi:
                raise BtfError(f"{path}: {value} does not fit in {size} bytes")
            buf[off : off + size] = value.to_bytes(size, order, signed=signed)
            return
        if t.kind == FLOAT:
            fmt = {4: "<f", 8: "<d"}.get(t.size)
            if fmt is None or not isinstance(value, int | float):
                raise BtfError(f"{path}: expected a number, got {value!r}")
            buf[off : off + size] = struct.pack(fmt, value)
            return
        if t.kind == ARRAY:
            elem = t.ref
            esize = self.size_of(elem)
            et = self.strip(elem)
            n = t.extra[1]
            if et.kind == INT and esize == 1 and isinstance(value, str):
                raw = value.encode() if _is_char(et) else _hex_bytes(value, path)
                if len(raw) > n:
                    raise BtfError(f"{path}: {len(raw)} bytes do not fit in {n}")
                buf[off : off + len(raw)] = raw
                return
            if not isinstance(value, list) or len(value) > n:
                raise BtfError(f"{path}: expected a list of at most {n} items")
            for i, v in enumerate(value):
                self._encode(elem, v, buf, off + i * esize, f"{path}[{i}]")
            return
        if t.kind in (STRUCT, UNION):
            if not isinstance(value, dict):
                raise BtfError(f"{path}: expected an object, got {value!r}")
            known = {m.name or f"_{i}": m for i, m in enumerate(t.members)}
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise BtfError(f"{path}: unknown field {unknown[0]!r} (fields: {', '.join(known)})")
            for name, v in value.items():
                m = known[name]
                if m.bitfield_size:
                    if not isinstance(v, int) or not 0 <= v < 1 << m.bitfield_size:
                        raise BtfError(f"{path}.{name}: bad bitfield value {v!r}")
                    word = int.from_bytes(buf[off : off + t.size], "little")
                    mask = ((1 << m.bitfield_size) - 1) << m.bit_offset
                    word = (word & ~mask) | (v << m.bit_offset)
                    buf[off : off + t.size] = word.to_bytes(t.size, "little")
                else:
                    self._encode(m.type_id, v, buf, off + m.bit_offset // 8, f"{path}.{name}")
            return
        raise BtfError(f"{path}: cannot encode {self.type_name(type_id)}")


def decode_or_hex(btf: Btf | None, type_id: int, raw: bytes) -> Any:
    """'raw' typed through 'btf' when it can be, else its hex digits (for
    display: a map without BTF, or a type decode() does not handle)."""
    if btf is None or not type_id:
        return raw.hex()
    try:
        return btf.decode(type_id, raw)
    except BtfError:
        return raw.hex()


def _is_char(t: BtfType) -> bool:
    """clang marks `char` by name, pahole by the CHAR encoding bit."""
    return bool(t.extra[0] & INT_CHAR) or t.name == "char"


def _hex_bytes(text: str, path: str) -> bytes:
    s = text.removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise BtfError(f"{path}: {text!r} is not hex") from None


def _address_bytes(kind: str, value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise BtfError(f"{path}: expected an address string, got {value!r}")
    if kind == "okopy_mac_t":
        raw = _hex_bytes(value, path)
        if len(raw) != 6:
            raise BtfError(f"{path}: {value!r} is not a MAC address")
        return raw
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise BtfError(f"{path}: {value!r} is not an IP address") from None
    want = ADDRESS_TYPEDEFS[kind]
    if len(addr.packed) != want:
        raise BtfError(f"{path}: {value!r} is not an IPv{4 if want == 4 else 6} address")
    return addr.packed


def _cstr(strings: bytes, off: int) -> str:
    if off >= len(strings) and off:
        raise BtfError(f"string offset {off} outside the string section")
    end = strings.find(b"\0", off)
    return strings[off : end if end >= 0 else len(strings)].decode("utf-8", "replace")


def _parse_types(data: bytes, strings: bytes) -> list[BtfType]:
    types = [BtfType(0, 0, "void")]
    off = 0
    while off < len(data):
        if off + 12 > len(data):
            raise BtfError(f"truncated BTF type at offset {off}")
        name_off, info, size_type = struct.unpack_from("<III", data, off)
        off += 12
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = _cstr(strings, name_off)
        tid = len(types)
        need = {INT: 4, ARRAY: 12, STRUCT: 12 * vlen, UNION: 12 * vlen, ENUM: 8 * vlen,
                FUNC_PROTO: 8 * vlen, VAR: 4, DATASEC: 12 * vlen, DECL_TAG: 4,
                ENUM64: 12 * vlen}.get(kind, 0)  # fmt: skip
        if off + need > len(data):
            raise BtfError(f"truncated BTF type {tid} ({KIND_NAMES.get(kind, kind)})")
        if kind == INT:
            (enc,) = struct.unpack_from("<I", data, off)
            bits = ((enc >> 24) & 0xF, (enc >> 16) & 0xFF, enc & 0xFF)
            t = BtfType(tid, kind, name, size=size_type, extra=bits)
        elif kind == ARRAY:
            elem, index, nelems = struct.unpack_from("<III", data, off)
            t = BtfType(tid, kind, name, ref=elem, extra=(index, nelems))
        elif kind in (STRUCT, UNION):
            members = []
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", data, off + 12 * i)
                bits = m_off & 0xFFFFFF if kflag else m_off
                bsize = m_off >> 24 if kflag else 0
                members.append(Member(_cstr(strings, m_name), m_type, bits, bsize))
            t = BtfType(tid, kind, name, size=size_type, members=tuple(members))
        elif kind == ENUM:
            vals = []
            for i in range(vlen):
                v_name, v = struct.unpack_from("<Ii", data, off + 8 * i)
                vals.append((_cstr(strings, v_name), v))
            t = BtfType(tid, kind, name, size=size_type, enum_values=tuple(vals))
        elif kind == ENUM64:
            vals = []
            for i in range(vlen):
                v_name, lo, hi = struct.unpack_from("<III", data, off + 12 * i)
                vals.append((_cstr(strings, v_name), (hi << 32) | lo))
            t = BtfType(tid, kind, name, size=size_type, enum_values=tuple(vals))
        elif kind == DATASEC:
            members = []
            for i in range(vlen):
                v_type, v_off, _v_size = struct.unpack_from("<III", data, off + 12 * i)
                v_name = ""
                if 0 < v_type < len(types) and types[v_type].kind == VAR:
                    v_name = types[v_type].name
                members.append(Member(v_name, v_type, v_off * 8, 0))
            t = BtfType(tid, kind, name, size=size_type, members=tuple(members))
        elif kind == FLOAT:
            t = BtfType(tid, kind, name, size=size_type)
        elif kind in KIND_NAMES:
            t = BtfType(tid, kind, name, ref=size_type)
        else:
            raise BtfError(f"unknown BTF kind {kind} for type {tid}")
        off += need
        types.append(t)
    return types


MAP_TYPE_NAMES = {1: "hash", 2: "array", 9: "lru_hash", 11: "lpm_trie"}
PIN_BY_NAME = 1


@dataclass(frozen=True)
class MapDef:
    """A BTF-defined map (`SEC(".maps")`), as the object declares it."""

    name: str
    type: int
    key_type_id: int
    value_type_id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    pinning: int

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.type, f"type {self.type}")


def map_definitions(btf: Btf) -> list[MapDef]:
    """Read the maps of the `.maps` section: `__uint(x, N)` is encoded as a
    pointer to an array of N elements, `__type(x, T)` as a pointer to T."""
    sec = next((t for t in btf.types if t.kind == DATASEC and t.name == ".maps"), None)
    if sec is None:
        return []
    out = []
    for var in sec.members:
        struct_t = btf.strip(btf[var.type_id].ref)
        if struct_t.kind != STRUCT:
            raise BtfError(f"map {var.name}: definition is not a struct")
        fields: dict[str, int] = {}
        types: dict[str, int] = {}
        for m in struct_t.members:
            target = btf.resolve(m.type_id)
            if target.kind != PTR:
                raise BtfError(f"map {var.name}: member {m.name} is not a pointer")
            pointee = btf.resolve(target.ref)
            if m.name in ("key", "value"):
                types[m.name] = target.ref
            elif pointee.kind == ARRAY:
                fields[m.name] = pointee.extra[1]
        key_t, value_t = types.get("key", 0), types.get("value", 0)
        out.append(
            MapDef(
                var.name,
                fields.get("type", 0),
                key_t,
                value_t,
                btf.size_of(key_t) if key_t else fields.get("key_size", 0),
                btf.size_of(value_t) if value_t else fields.get("value_size", 0),
                fields.get("max_entries", 0),
                fields.get("map_flags", 0),
                fields.get("pinning", 0),
            )
        )
    return out
