"""Hand-made BTF for tests of refusals: a writer, not a reader.

`BtfWriter` appends types (the kernel's layouts, include/uapi/linux/btf.h)
and names, and `blob()` returns the section; ids start at 1 in the order
the types were added.  Nothing here checks what it writes: that is the point.
"""

from __future__ import annotations

import struct

INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
CONST, FLOAT = 10, 16
INT_SIGNED, INT_BOOL = 1, 4


class BtfWriter:
    def __init__(self) -> None:
        self.types = bytearray()
        self.strings = bytearray(b"\0")
        self.count = 0

    def name(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def _type(self, name: str, kind: int, vlen: int, size_type: int, kflag: bool = False) -> int:
        info = (kind << 24) | vlen | (1 << 31 if kflag else 0)
        self.types += struct.pack("<III", self.name(name), info, size_type)
        self.count += 1
        return self.count

    def integer(self, name: str, size: int, encoding: int = 0) -> int:
        tid = self._type(name, INT, 0, size)
        self.types += struct.pack("<I", (encoding << 24) | size * 8)
        return tid

    def ref(self, kind: int, to: int, name: str = "") -> int:
        """PTR, TYPEDEF, CONST...: a type that names another."""
        return self._type(name, kind, 0, to)

    def array(self, elem: int, index: int, n: int) -> int:
        tid = self._type("", ARRAY, 0, 0)
        self.types += struct.pack("<III", elem, index, n)
        return tid

    def struct(
        self, name: str, size: int, members: list[tuple[str, int, int, int]], kind: int = STRUCT
    ) -> int:
        """'members': (name, type, bit offset, bitfield size)."""
        kflag = any(bits for _, _, _, bits in members)
        tid = self._type(name, kind, len(members), size, kflag)
        for m_name, m_type, off, bits in members:
            self.types += struct.pack("<III", self.name(m_name), m_type, (bits << 24 | off))
        return tid

    def raw(self, name_off: int, info: int, size_type: int, extra: bytes = b"") -> int:
        """A type exactly as given, 'name_off' unchecked."""
        self.types += struct.pack("<III", name_off, info, size_type) + extra
        self.count += 1
        return self.count

    def blob(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types),
            len(self.strings),
        )  # fmt: skip
        return hdr + bytes(self.types) + bytes(self.strings)
