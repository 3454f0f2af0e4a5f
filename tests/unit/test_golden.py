"""okopy.ofp against the bytes the patched ovs-ofctl sends (tests/golden/).

Every captured message decodes and re-encodes byte for byte, and the
messages the controller builds are identical to ovs-ofctl's for the same
request (xids zeroed)."""

from __future__ import annotations

import struct

import pytest

from okopy.ofp import constants as c
from okopy.ofp import messages as m
from tests.golden.capture import COMMANDS, HERE, read


def body_type(raw: bytes) -> tuple[int, bytes]:
    version, typ, length, _ = struct.unpack_from("!BBHI", raw)
    vendor, exp_type = struct.unpack_from("!II", raw, 8)
    assert (version, typ, length, vendor) == (4, 4, len(raw), c.OKOPY_VENDOR_ID)
    return exp_type, raw[16:]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_round_trip(name: str) -> None:
    msgs = read(name)
    assert msgs, f"nothing captured for {name}"
    for raw in msgs:
        exp_type, body = body_type(raw)
        msg = m.decode(exp_type, body)
        assert msg.frame(xid=0) == raw


def test_load_is_what_the_controller_sends() -> None:
    elf = (HERE / "tiny.o").read_bytes()
    (raw,) = read("load")
    ours = list(m.ProgLoad.chunks(7, elf, "guard", c.ProgLoadFlags.REPLACE, cookie=0x1234))
    assert [x.frame(xid=0) for x in ours] == [raw]


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("unload", m.ProgUnload(7)),
        ("list", m.ProgListRequest(0, 0)),
        ("maps", m.MapListRequest(7)),
        ("dump", m.MapDumpRequest(7, "sources", 0, 0, 0)),
        ("lookup", m.MapLookupRequest(7, "sources", 4, 0, 1, 0, (bytes([10, 0, 0, 1]),))),
        ("update", m.MapUpdate(7, "config", 4, 8, 1, c.MapUpdateFlags.EXIST, (bytes(4),),
                               (bytes.fromhex("3200000005000000"),))),
        ("delete", m.MapDelete(7, "sources", 4, 0, 2, 0, (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))),
    ],
)  # fmt: skip
def test_messages_match_ovs_ofctl(name: str, msg: m.Message) -> None:
    expected = [msg.frame(xid=0)]
    if isinstance(msg, m.MapLookupRequest | m.MapUpdate | m.MapDelete | m.MapDumpRequest):
        # Without --hex, ovs-ofctl reads the map's BTF first (the capture's
        # switch has none, so the keys and values are hex).
        expected.insert(0, m.MapBtfRequest(7, msg.map).frame(xid=0))
    assert expected == read(name)
