"""BTF: map keys and values as JSON, through libokovm's codec.

A map's key and value types come from the object's BTF.  libokovm holds
the one codec that reads them (vm/src/btf-codec.c, also what the switch's
tools use): `Btf.decode()` turns raw bytes into JSON-ready values and
`Btf.encode()` does the reverse, so maps can be read and written as
`{"saddr": "10.0.0.1", "port": 80}` rather than hex.  The conventions
(byte order and addresses from typedef names in bpf/include/okopy/types.h)
are documented in vm/include/okovm.h.

This module only moves values between Python and JSON text; it does not
parse BTF itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from okopy.bpf.libokovm import _lib


class BtfError(ValueError):
    """Malformed BTF, or a value that does not fit its type."""


def _message(ffi: Any, err: Any) -> str:
    return str(ffi.string(err.msg).decode("utf-8", "replace"))


def _syntax(name: str) -> int:
    """libokovm's number for a text syntax: "ovs" or "json"."""
    _, lib = _lib()
    return int({"json": lib.OKOVM_BTF_JSON, "ovs": lib.OKOVM_BTF_OVS}[name])


class Btf:
    """One BTF blob, parsed and checked by libokovm."""

    def __init__(self, handle: Any, raw: bytes) -> None:
        self._h = handle
        self.raw = raw

    @classmethod
    def parse(cls, blob: bytes) -> Btf:
        ffi, lib = _lib()
        out = ffi.new("struct okovm_btf **")
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_new(blob, len(blob), out, err):
            raise BtfError(_message(ffi, err))
        return cls(ffi.gc(out[0], lib.okovm_btf_destroy), bytes(blob))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Btf) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"Btf({len(self.raw)} bytes)"

    def find_type(self, name: str) -> int:
        """The id of the first type named 'name', 0 if none."""
        _, lib = _lib()
        return int(lib.okovm_btf_find_type(self._h, name.encode()))

    def type_name(self, type_id: int) -> str:
        """A C-like spelling of 'type_id' for messages."""
        ffi, lib = _lib()
        buf = ffi.new("char[]", 256)
        if lib.okovm_btf_type_name(self._h, type_id, buf, len(buf)):
            raise BtfError(f"no BTF type {type_id}")
        return str(ffi.string(buf).decode("utf-8", "replace"))

    def size_of(self, type_id: int) -> int:
        ffi, lib = _lib()
        size = ffi.new("uint32_t *")
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_type_size(self._h, type_id, size, err):
            raise BtfError(_message(ffi, err))
        return int(size[0])

    def decode(self, type_id: int, data: bytes) -> Any:
        """Turn 'data' (exactly the type's size) into a JSON-ready value."""
        ffi, lib = _lib()
        out = ffi.new("char **")
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_decode(self._h, type_id, data, len(data), out, err):
            raise BtfError(_message(ffi, err))
        try:
            return json.loads(ffi.string(out[0]).decode())
        finally:
            lib.okovm_free(out[0])

    def format(self, type_id: int, data: bytes, syntax: str = "ovs") -> str:
        """'data' as text: "ovs", the syntax ovs-ofctl prints
        (`{saddr=10.0.0.1,sport=53}`), or "json"."""
        ffi, lib = _lib()
        out = ffi.new("char **")
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_format(self._h, type_id, data, len(data), _syntax(syntax), out, err):
            raise BtfError(_message(ffi, err))
        try:
            return str(ffi.string(out[0]).decode("utf-8", "replace"))
        finally:
            lib.okovm_free(out[0])

    def encode(self, type_id: int, value: Any) -> bytes:
        """Turn a JSON-ready 'value' into the bytes of 'type_id'."""
        ffi, lib = _lib()

        def refuse(obj: object) -> Any:
            raise BtfError(
                f"{self.type_name(type_id)}: {obj!r} is not a JSON value "
                "(give numbers, strings, lists and objects)"
            )

        text = json.dumps(value, default=refuse)
        size = self.size_of(type_id)
        buf = ffi.new("uint8_t[]", max(size, 1))
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_encode(self._h, type_id, text.encode(), buf, size, err):
            raise BtfError(_message(ffi, err))
        return bytes(ffi.buffer(buf, size))

    def parse_text(self, type_id: int, text: str, syntax: str = "ovs") -> bytes:
        """The bytes of 'type_id' that 'text' gives, in the syntax of
        format(): "ovs" reads what ovs-ofctl prints and takes."""
        ffi, lib = _lib()
        size = self.size_of(type_id)
        buf = ffi.new("uint8_t[]", max(size, 1))
        err = ffi.new("struct okovm_error *")
        if lib.okovm_btf_parse(self._h, type_id, text.encode(), _syntax(syntax), buf, size, err):
            raise BtfError(_message(ffi, err))
        return bytes(ffi.buffer(buf, size))


def decode_or_hex(btf: Btf | None, type_id: int, raw: bytes) -> Any:
    """'raw' typed through 'btf' when it can be, else its hex digits (for
    display: a map without BTF, or a type the codec cannot show)."""
    if btf is None or not type_id:
        return raw.hex()
    try:
        return btf.decode(type_id, raw)
    except BtfError:
        return raw.hex()


def parse_entry_text(text: str) -> Any:
    """A map key or value typed on a command line or in a URL: JSON, or
    else, where that is unambiguous, the bare text as a string.

    `10.0.0.1`, `2001:db8::1`, `02:00:00:00:00:01` and `eth0` are strings,
    as in a policy file and ovs-ofctl; `7`, `"7"`, `{"rate": 5}` and
    `[1, 2]` are JSON.  Text that starts like a JSON string, object or
    array but is not valid JSON raises ValueError: it was meant as JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        stripped = text.strip()
        if not stripped or stripped[0] in '"{[' or stripped != text:
            raise ValueError(f"{text!r} is not JSON ({e.msg})") from None
        return text


@dataclass(frozen=True)
class TypedMap:
    """How one map's entries turn into JSON and back: its key and value
    sizes and, where known, their BTF types (from the object, or read from
    the switch).  Without a type, a key or value is hex ("0x..." in)."""

    name: str
    key_size: int
    value_size: int
    btf: Btf | None = None
    key_type_id: int = 0
    value_type_id: int = 0

    def encode_key(self, key: Any) -> bytes:
        return self._encode(self.key_type_id, self.key_size, key, "key")

    def encode_value(self, value: Any) -> bytes:
        return self._encode(self.value_type_id, self.value_size, value, "value")

    def decode_entry(self, key: bytes, value: bytes) -> dict[str, Any]:
        """Bytes of an entry -> {"key": JSON, "value": JSON} (hex where BTF cannot)."""
        return {
            "key": decode_or_hex(self.btf, self.key_type_id, key),
            "value": decode_or_hex(self.btf, self.value_type_id, value),
        }

    def _encode(self, type_id: int, size: int, obj: Any, what: str) -> bytes:
        if isinstance(obj, str) and obj.startswith("0x"):
            try:
                raw = bytes.fromhex(obj[2:])
            except ValueError:
                raise BtfError(f"map {self.name}: {what} {obj!r} is not hex digits") from None
        elif self.btf is None or not type_id:
            raise BtfError(f"map {self.name} has no BTF type for its {what}: give 0x-hex")
        else:
            raw = self.btf.encode(type_id, obj)
        if len(raw) != size:
            raise BtfError(f"map {self.name}: {what} is {len(raw)} bytes, the map's is {size}")
        return raw


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
    """The maps of the `.maps` section, read by libokovm."""
    ffi, lib = _lib()
    defs = ffi.new("struct okovm_btf_map_def **")
    n = ffi.new("uint32_t *")
    err = ffi.new("struct okovm_error *")
    if lib.okovm_btf_map_defs(btf._h, defs, n, err):
        raise BtfError(_message(ffi, err))
    try:
        return [
            MapDef(
                ffi.string(d.name).decode("utf-8", "replace"),
                d.type,
                d.key_type_id,
                d.value_type_id,
                d.key_size,
                d.value_size,
                d.max_entries,
                d.map_flags,
                d.pinning,
            )
            for d in (defs[0][i] for i in range(n[0]))
        ]
    finally:
        lib.okovm_free(defs[0])
