"""Just enough ELF to find a BPF object's sections, with clear refusals.

The VM parses objects itself (with libbpf); this reader lets Python tools
look at sections (`.BTF`, program sections) without loading anything."""

from __future__ import annotations

import struct
from dataclasses import dataclass

EM_BPF = 247


class ElfError(ValueError):
    """Not an ELF object this project can use; the message says why."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    data: bytes


def sections(blob: bytes) -> dict[str, Section]:
    """The sections of a 64-bit little-endian BPF ELF object, by name."""
    return {s.name: s for s in section_list(blob)}


def section_list(blob: bytes) -> list[Section]:
    """The sections in header order (index i is section i)."""
    if len(blob) < 64 or blob[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (bad magic or shorter than a header)")
    if blob[4] != 2 or blob[5] != 1:
        raise ElfError("not a 64-bit little-endian ELF object")
    (e_machine,) = struct.unpack_from("<H", blob, 18)
    if e_machine != EM_BPF:
        raise ElfError(f"ELF machine is {e_machine}, not BPF ({EM_BPF}): "
                       "compile with clang -target bpf")  # fmt: skip
    (e_shoff,) = struct.unpack_from("<Q", blob, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", blob, 58)
    if e_shentsize != 64:
        raise ElfError(f"unexpected section header size {e_shentsize}")
    if e_shoff + e_shnum * 64 > len(blob):
        raise ElfError("section headers run past the end of the file (truncated?)")
    raw = []
    for i in range(e_shnum):
        name, typ, flags, _addr, off, size = struct.unpack_from("<IIQQQQ", blob, e_shoff + 64 * i)
        nobits = typ == 8
        if not nobits and off + size > len(blob):
            raise ElfError(f"section {i} runs past the end of the file (truncated?)")
        raw.append((name, typ, flags, off, size, b"" if nobits else blob[off : off + size]))
    if e_shstrndx >= len(raw):
        raise ElfError("section name table index out of range")
    names = raw[e_shstrndx][5]
    out = []
    for name_off, typ, flags, off, size, data in raw:
        end = names.find(b"\0", name_off)
        name = names[name_off : end if end >= 0 else None].decode("utf-8", "replace")
        out.append(Section(name, typ, flags, off, size, data))
    return out


SHF_EXECINSTR = 0x4
BPF_CALL_OPCODE = 0x85
BPF_MOV64_IMM_OPCODE = 0xB7
HELPER_KTIME_GET_NS = 5
HELPER_GET_PRANDOM_U32 = 7


def fix_helpers(blob: bytes, *, clock_ns: int | None = None, prandom: int | None = None) -> bytes:
    """Replace calls of bpf_ktime_get_ns / bpf_get_prandom_u32 with constants.

    Each `call` becomes `r0 = IMM` (one instruction each way, so jumps and
    line info stay valid), making a program deterministic in any runtime,
    the kernel included.  Values must fit a non-negative 32-bit immediate."""
    pins = {HELPER_KTIME_GET_NS: clock_ns, HELPER_GET_PRANDOM_U32: prandom}
    for helper, value in pins.items():
        if value is not None and not 0 <= value < 1 << 31:
            raise ValueError(f"helper {helper}: {value} does not fit a 31-bit immediate")
    out = bytearray(blob)
    for sec in sections(blob).values():
        if not sec.flags & SHF_EXECINSTR or sec.type != 1:
            continue
        for off in range(sec.offset, sec.offset + sec.size - 7, 8):
            code, regs = out[off], out[off + 1]
            imm = int.from_bytes(out[off + 4 : off + 8], "little", signed=True)
            value = pins.get(imm) if code == BPF_CALL_OPCODE and regs >> 4 == 0 else None
            if value is not None:
                out[off : off + 8] = bytes([BPF_MOV64_IMM_OPCODE, 0, 0, 0]) + value.to_bytes(
                    4, "little"
                )
    return bytes(out)


STT_FUNC = 2


@dataclass(frozen=True)
class Function:
    name: str
    section: str
    offset: int
    size: int


def functions(blob: bytes) -> list[Function]:
    """Function symbols of the object, with the section holding each."""
    by_index = section_list(blob)
    secs = {s.name: s for s in by_index}
    symtab, strtab = secs.get(".symtab"), secs.get(".strtab")
    if symtab is None or strtab is None:
        return []
    out = []
    for off in range(0, len(symtab.data) - 23, 24):
        st_name, st_info, _other, st_shndx, st_value, st_size = struct.unpack_from(
            "<IBBHQQ", symtab.data, off
        )
        if st_info & 0xF != STT_FUNC or not 0 < st_shndx < len(by_index):
            continue
        end = strtab.data.find(b"\0", st_name)
        name = strtab.data[st_name : end if end >= 0 else None].decode("utf-8", "replace")
        out.append(Function(name, by_index[st_shndx].name, st_value, st_size))
    return out
