"""Read and write classic pcap files (Ethernet link type), strictly.

Bad input gets an error naming the file offset and what is wrong; nothing
is silently skipped."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_ETHERNET = 1
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
MAX_SNAPLEN = 262144


class PcapError(ValueError):
    """A malformed or unsupported capture file."""


@dataclass(frozen=True)
class Packet:
    timestamp_ns: int
    data: bytes
    orig_len: int


def read(path: Path) -> list[Packet]:
    return list(iter_packets(path.read_bytes(), str(path)))


def iter_packets(blob: bytes, name: str = "<pcap>") -> Iterator[Packet]:
    if len(blob) < 24:
        raise PcapError(f"{name}: {len(blob)} bytes, too short for a pcap header")
    if blob[:4] == b"\x0a\x0d\x0d\x0a":
        raise PcapError(f"{name}: pcapng is not supported; convert with "
                        "`editcap -F pcap in.pcapng out.pcap`")  # fmt: skip
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", blob)
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise PcapError(f"{name}: not a pcap file (magic {blob[:4].hex()})")
    scale = 1 if magic == MAGIC_NS else 1000
    _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack_from(order + "HHiIII", blob, 4)
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{name}: link type {linktype}, only Ethernet (1) is supported")
    off = 24
    n = 0
    while off < len(blob):
        if off + 16 > len(blob):
            raise PcapError(f"{name}: packet {n + 1} header truncated at offset {off}")
        sec, frac, incl, orig = struct.unpack_from(order + "IIII", blob, off)
        if incl > MAX_SNAPLEN:
            raise PcapError(f"{name}: packet {n + 1} at offset {off} claims {incl} bytes")
        if off + 16 + incl > len(blob):
            raise PcapError(f"{name}: packet {n + 1} data truncated at offset {off}")
        yield Packet(sec * 1_000_000_000 + frac * scale, blob[off + 16 : off + 16 + incl], orig)
        off += 16 + incl
        n += 1


def write(path: Path, packets: Iterable[bytes | Packet]) -> int:
    """Write 'packets' as a nanosecond pcap; returns how many were written."""
    out = [struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    count = 0
    for i, p in enumerate(packets):
        pkt = p if isinstance(p, Packet) else Packet(i * 1000, p, len(p))
        sec, ns = divmod(pkt.timestamp_ns, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, ns, len(pkt.data), pkt.orig_len))
        out.append(pkt.data)
        count += 1
    path.write_bytes(b"".join(out))
    return count
