"""The `bpf(prog=N[,table=T][,drop_unless=V])` action and the `bpf_verdict`
field, encoded."""

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
from okopy.policy.desired import bpf_canonical, bpf_from_canonical
from okopy.policy.file import DROP_UNLESS_MAX, VERDICT_NAMES

OFPAT_EXPERIMENTER = 0xFFFF
OFPXMC_EXPERIMENTER = 0xFFFF
# drop_unless: 0, or 1 + a verdict from 0 to DROP_UNLESS_MAX.
ACTION = struct.Struct("!HHIHBBI")


class ActionDecodeError(ValueError):
    """A malformed bpf action."""


@dataclass(frozen=True)
class BpfAction:
    """`bpf(prog=N)` (monitor), `bpf(prog=N,table=T)` (verdict, recirculate);
    with `drop_unless=V`, packets whose verdict is not V are dropped there."""

    prog_id: int
    table: int | None = None
    drop_unless: int | None = None

    def __post_init__(self) -> None:
        if self.drop_unless is not None and not 0 <= self.drop_unless <= DROP_UNLESS_MAX:
            raise ValueError(f"drop_unless {self.drop_unless}: a verdict from 0 to "
                             f"{DROP_UNLESS_MAX}")  # fmt: skip

    def encode(self) -> bytes:
        table = OKOPY_BPF_NO_TABLE if self.table is None else self.table
        keep = 0 if self.drop_unless is None else self.drop_unless + 1
        return ACTION.pack(
            OFPAT_EXPERIMENTER, ACTION.size, OKOPY_VENDOR_ID, OKOPYAST_BPF, table, keep,
            self.prog_id,
        )  # fmt: skip

    def payload(self) -> bytes:
        """The bytes after the 8-byte experimenter action header."""
        return self.encode()[8:]

    @classmethod
    def decode(cls, raw: bytes) -> BpfAction:
        if len(raw) < ACTION.size:
            raise ActionDecodeError(f"bpf action: {len(raw)} bytes, need {ACTION.size}")
        typ, length, vendor, sub, table, keep, prog = ACTION.unpack_from(raw)
        if (typ, length, vendor, sub) != (
            OFPAT_EXPERIMENTER,
            ACTION.size,
            OKOPY_VENDOR_ID,
            OKOPYAST_BPF,
        ):
            raise ActionDecodeError("not a bpf action")
        return cls(prog, None if table == OKOPY_BPF_NO_TABLE else table, keep - 1 if keep else None)

    def __str__(self) -> str:
        """As ovs-ofctl prints it."""
        out = f"bpf(prog={self.prog_id}"
        if self.table is not None:
            out += f",table={self.table}"
        if self.drop_unless is not None:
            out += f",drop_unless={verdict_name(self.drop_unless)}"
        return out + ")"

    def canonical(self) -> str:
        """The form the controller compares (okopy.policy.desired)."""
        return bpf_canonical(self.prog_id, self.table, self.drop_unless)

    @classmethod
    def from_canonical(cls, text: str) -> BpfAction:
        """The inverse of canonical(), given what follows "bpf:"."""
        return cls(*bpf_from_canonical(text))


def verdict_name(verdict: int) -> str:
    """A verdict's name, or its number if it has none."""
    return next((k for k, v in VERDICT_NAMES.items() if v == verdict), str(verdict))


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
