"""The `bpf(prog=N[,table=T])` action and the `bpf_verdict` field, encoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from okopy.ofp.constants import (
    OKOPY_BPF_NO_TABLE,
    OKOPY_BPF_VERDICT_SET,
    OKOPY_VENDOR_ID,
    OKOPYAST_BPF,
    OKOXM_ET_BPF_VERDICT,
)

OFPAT_EXPERIMENTER = 0xFFFF
OFPXMC_EXPERIMENTER = 0xFFFF
ACTION = struct.Struct("!HHIHBxI")


class ActionDecodeError(ValueError):
    """A malformed bpf action."""


@dataclass(frozen=True)
class BpfAction:
    """`bpf(prog=N)` (monitor) or `bpf(prog=N,table=T)` (verdict, recirculate)."""

    prog_id: int
    table: int | None = None

    def encode(self) -> bytes:
        table = OKOPY_BPF_NO_TABLE if self.table is None else self.table
        return ACTION.pack(
            OFPAT_EXPERIMENTER, ACTION.size, OKOPY_VENDOR_ID, OKOPYAST_BPF, table, self.prog_id
        )

    def payload(self) -> bytes:
        """The bytes after the 8-byte experimenter action header."""
        return self.encode()[8:]

    @classmethod
    def decode(cls, raw: bytes) -> BpfAction:
        if len(raw) < ACTION.size:
            raise ActionDecodeError(f"bpf action: {len(raw)} bytes, need {ACTION.size}")
        typ, length, vendor, sub, table, prog = ACTION.unpack_from(raw)
        if (typ, length, vendor, sub) != (
            OFPAT_EXPERIMENTER,
            ACTION.size,
            OKOPY_VENDOR_ID,
            OKOPYAST_BPF,
        ):
            raise ActionDecodeError("not a bpf action")
        return cls(prog, None if table == OKOPY_BPF_NO_TABLE else table)

    def __str__(self) -> str:
        return f"bpf(prog={self.prog_id}" + (
            f",table={self.table})" if self.table is not None else ")"
        )


VERDICT_NAMES = {"aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4}


def verdict_value(verdict: str | int) -> int:
    """The bpf_verdict field value for a verdict name, number or "none"."""
    if verdict == "none":
        return 0
    n = (
        VERDICT_NAMES[verdict]
        if isinstance(verdict, str) and verdict in VERDICT_NAMES
        else int(verdict)
    )
    if not 0 <= n <= 0xFFFFFFFF:
        raise ValueError(f"verdict {verdict!r} is not a 32-bit number")
    return OKOPY_BPF_VERDICT_SET | n


def verdict_oxm(verdict: str | int, mask: int | None = None) -> bytes:
    """The experimenter OXM TLV matching bpf_verdict."""
    value = verdict_value(verdict)
    has_mask = mask is not None
    payload = struct.pack("!I", OKOPY_VENDOR_ID) + struct.pack("!Q", value)
    if has_mask:
        payload += struct.pack("!Q", mask)
    header = (OFPXMC_EXPERIMENTER << 16) | (OKOXM_ET_BPF_VERDICT << 9) | (int(has_mask) << 8)
    return struct.pack("!I", header | len(payload)) + payload
