"""okopy.ofp: constants equal the patch series' header; codecs round-trip."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from okopy.ofp import constants as c
from okopy.ofp import messages as m
from okopy.ofp.action import ActionDecodeError, BpfAction, verdict_oxm, verdict_value

ROOT = Path(__file__).resolve().parent.parent.parent
HEADER = "include/openflow/okopy-ext.h"


def header_from_series() -> str:
    """The header as the whole series leaves it: created by one patch and
    perhaps changed by later ones, so apply every patch's part for it."""
    patches = sorted((ROOT / "ovs-patches").glob("*.patch"))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["git", "init", "-q", d], check=True)
        for patch in patches:
            subprocess.run(
                ["git", "-C", d, "apply", f"--include={HEADER}", str(patch)],
                check=True, capture_output=True,
            )  # fmt: skip
        path = Path(d) / HEADER
        if not path.exists():
            pytest.fail(f"no patch in ovs-patches/ creates {HEADER}")
        return path.read_text()


def header_numbers(text: str) -> dict[str, int]:
    nums = {}
    for name, raw in re.findall(r"^#define\s+(OKOPY\w+)\s+(\S+)", text, re.M):
        if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", raw):
            nums[name] = int(raw, 0)
    for name, raw in re.findall(r"^\s+(OK\w+)\s*=\s*([^,/]+),", text, re.M):
        shift = re.fullmatch(r"1 << (\d+)", raw.strip())
        nums[name] = 1 << int(shift.group(1)) if shift else int(raw.strip(), 0)
    return nums


def test_constants_match_the_header() -> None:
    h = header_numbers(header_from_series())
    assert h["OKOPY_VENDOR_ID"] == c.OKOPY_VENDOR_ID
    assert h["OKOPY_PROG_ID_MAX"] == c.OKOPY_PROG_ID_MAX
    assert h["OKOPY_NAME_LEN"] == c.OKOPY_NAME_LEN
    assert h["OKOPY_PROG_CHUNK_MAX"] == c.OKOPY_PROG_CHUNK_MAX
    assert h["OKOPY_BTF_CHUNK_MAX"] == c.OKOPY_BTF_CHUNK_MAX
    assert h["OKOPY_BPF_NO_TABLE"] == c.OKOPY_BPF_NO_TABLE
    assert h["OKOPYAST_BPF"] == c.OKOPYAST_BPF
    assert h["OKOXM_ET_BPF_VERDICT"] == c.OKOXM_ET_BPF_VERDICT
    for t in c.MsgType:
        assert h[f"OKOPYT_{t.name}"] == t.value, t
    for e in c.ErrorType:
        assert h[f"OKOPYBPF_{e.name}"] == e.value, e
    for f in c.ProgLoadFlags:
        assert h[f"OKOPY_PLF_{f.name}"] == f.value
    for mt in c.MapType:
        assert h[f"OKOPY_MAP_{mt.name}"] == mt.value
    for mode in c.ExecMode:
        assert h[f"OKOPY_EXEC_{mode.name}"] == mode.value
    for u in c.MapUpdateFlags:
        assert h[f"OKOPY_MUF_{u.name}"] == u.value
    assert h["OKOPY_LRF_MORE"] == c.LIST_REPLY_MORE
    assert h["OKOPY_MDF_PINNED"] == c.MAP_DESC_PINNED


def test_struct_sizes_match_the_header() -> None:
    text = header_from_series()
    sizes = dict(re.findall(r"OFP_ASSERT\(sizeof\(struct (\w+)\) == (\d+)\)", text))
    assert int(sizes["okopy_prog_load"]) == m.ProgLoad.FMT.size
    assert int(sizes["okopy_prog_load_reply"]) == m.ProgLoadReply.FMT.size
    assert int(sizes["okopy_map_desc"]) == m.MapDesc.FMT.size
    assert int(sizes["okopy_prog_id"]) == m.ProgUnload.FMT.size
    assert int(sizes["okopy_prog_list_request"]) == m.ProgListRequest.FMT.size
    assert int(sizes["okopy_prog_list_reply"]) == m.ProgListReply.FMT.size
    assert int(sizes["okopy_prog_stats"]) == m.ProgStats.FMT.size
    assert int(sizes["okopy_map_ref"]) == m.MapUpdate.FMT.size
    assert int(sizes["okopy_map_btf"]) == m.MapBtfRequest.FMT.size
    assert int(sizes["okopy_action_bpf"]) == 16


SAMPLES: list[m.Message] = [
    m.ProgLoad(7, c.ProgLoadFlags.REPLACE, 100, 0, b"\x7fELF" + bytes(5), "guard", 0xC00C1E),
    m.ProgLoadReply(7, 101, c.ExecMode.INTERP,
                    (m.MapDesc("sources", 9, 4, 24, 65536, 0, 0),
                     m.MapDesc("config", 2, 4, 8, 1, 0, c.MAP_DESC_PINNED, 1))),
    m.MapListRequest(7),
    m.MapListReply(7, (m.MapDesc("sources", 9, 4, 24, 65536, 0, 0, 1234),)),
    m.MapListReply(7),
    m.MapBtfRequest(7, "sources", 65280),
    m.MapBtfReply(7, "sources", 8, 20, 3, 4, bytes(range(12))),
    m.MapBtfReply(7, "sources"),
    m.ProgUnload(7),
    m.ProgUnloadReply(7),
    m.ProgListRequest(3, 10),
    m.ProgListReply(c.LIST_REPLY_MORE,
                    (m.ProgStats(7, 101, "guard", 1, 12, 0xC00C1E, 1000, 55000, (0, 10, 990, 0, 0, 0)),)),
    m.MapLookupRequest(7, "sources", 4, 24, 2, 0, (b"\x0a\0\0\1", b"\x0a\0\0\2")),
    m.MapLookupReply(7, "sources", 4, 24, 1, 0, (b"\x0a\0\0\1",), (bytes(range(24)),)),
    m.MapUpdate(7, "config", 4, 8, 1, c.MapUpdateFlags.EXIST, (bytes(4),), (b"\1" * 8,)),
    m.MapUpdateReply(7, "config", 4, 8, 1),
    m.MapDelete(7, "sources", 4, 24, 1, 0, (b"\x0a\0\0\1",)),
    m.MapDeleteReply(7, "sources", 4, 24, 1),
    m.MapDumpRequest(7, "sources", 0, 0, 100),
    m.MapDumpRequest(7, "sources", 4, 24, 100, 0, (b"\x0a\0\0\1",)),
    m.MapDumpReply(7, "sources", 4, 24, 2, c.LIST_REPLY_MORE,
                   (b"\x0a\0\0\1", b"\x0a\0\0\2"), (bytes(24), b"\xff" * 24)),
]  # fmt: skip


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip(msg: m.Message) -> None:
    body = msg.body()
    assert len(body) % 8 == 0
    assert m.decode(msg.TYPE, body) == msg
    whole = msg.frame(xid=9)
    assert whole[:2] == bytes([4, 4])  # OpenFlow 1.3 experimenter
    assert int.from_bytes(whole[2:4], "big") == len(whole)
    assert whole[8:16] == c.OKOPY_VENDOR_ID.to_bytes(4, "big") + msg.TYPE.to_bytes(4, "big")


def test_chunks_cover_the_object() -> None:
    elf = bytes(range(256)) * 600  # 153600 bytes: three chunks
    chunks = list(m.ProgLoad.chunks(5, elf, "big"))
    assert [ch.offset for ch in chunks] == [0, 65280, 130560]
    assert b"".join(ch.chunk for ch in chunks) == elf
    assert all(len(ch.frame()) < 65536 for ch in chunks)


@pytest.mark.parametrize(
    ("msg_type", "body", "message"),
    [
        (c.MsgType.PROG_LOAD, bytes(10), "shorter than its 64-byte header"),
        (
            c.MsgType.PROG_LOAD,
            m.ProgLoad.FMT.pack(1, 0, 10, 0, 99, 0, b"x"),
            "runs past the message",
        ),
        (c.MsgType.PROG_LOAD_REPLY, bytes(16 + 10), "not a multiple of 64"),
        (c.MsgType.MAP_LIST_REPLY, bytes(8 + 56), "not a multiple of 64"),
        (c.MsgType.MAP_LIST_REPLY, bytes(4), "shorter than its 8-byte header"),
        (
            c.MsgType.MAP_BTF_REPLY,
            m.MapBtfReply.FMT.pack(1, 0, 20, 12, 0, 0, b"m") + bytes(8),
            "runs past the message",
        ),
        (c.MsgType.PROG_LIST_REPLY, bytes(8 + 3), "not a multiple of 120"),
        (c.MsgType.MAP_UPDATE, m.MapUpdate.FMT.pack(1, 5, 4, 4, 0, b"m") + bytes(8), "do not fit"),
        (99, b"", "unknown okopy message subtype 99"),
    ],
)
def test_malformed(msg_type: int, body: bytes, message: str) -> None:
    with pytest.raises(m.OfpDecodeError, match=message):
        m.decode(msg_type, body)


def test_name_too_long() -> None:
    msg = m.ProgLoad(1, 0, 1, 0, b"x", "n" * 33)
    with pytest.raises(ValueError, match="longer than 32"):
        msg.body()


def test_bpf_action() -> None:
    raw = BpfAction(9, 1).encode()
    assert raw.hex() == "ffff001000024f4b0001" + "0100" + "00000009"
    assert BpfAction.decode(raw) == BpfAction(9, 1)
    assert BpfAction.decode(BpfAction(9).encode()) == BpfAction(9, None)
    assert str(BpfAction(9, 1)) == "bpf(prog=9,table=1)"
    with pytest.raises(ActionDecodeError):
        BpfAction.decode(raw[:10])


def test_bpf_action_drop_unless() -> None:
    """The byte after the table is 1 + the verdict (0: none), as in the
    series' tests/ofp-actions.at."""
    raw = BpfAction(5, None, 2).encode()
    assert raw.hex() == "ffff001000024f4b0001" + "ff03" + "00000005"
    assert BpfAction.decode(raw) == BpfAction(5, None, 2)
    assert BpfAction(5, 3, 254).encode().hex()[20:24] == "03ff"
    assert str(BpfAction(5, None, 2)) == "bpf(prog=5,drop_unless=pass)"
    assert str(BpfAction(5, 3, 9)) == "bpf(prog=5,table=3,drop_unless=9)"
    for action in (BpfAction(5), BpfAction(5, 3), BpfAction(5, None, 0), BpfAction(5, 3, 254)):
        assert action.canonical().startswith("bpf:")
        assert BpfAction.from_canonical(action.canonical()[4:]) == action
    with pytest.raises(ValueError, match="drop_unless 255"):
        BpfAction(5, None, 255)


def test_bpf_verdict_field() -> None:
    assert verdict_value("none") == 0
    assert verdict_value("aborted") == 1 << 32
    assert verdict_value("drop") == (1 << 32) | 1
    assert verdict_value(7) == (1 << 32) | 7
    tlv = verdict_oxm("pass")
    assert tlv[:4].hex() == "ffff020c"  # class 0xffff, field 1, no mask, length 12
    assert tlv[4:8] == c.OKOPY_VENDOR_ID.to_bytes(4, "big")


def test_errors() -> None:
    err = m.decode_error(c.ErrorType.VERIFIER_REFUSED, c.OKOPY_VENDOR_ID, b"R0 invalid\0")
    assert err is not None
    assert err.text == "R0 invalid"
    assert str(err) == "OKOPYBPF_VERIFIER_REFUSED: R0 invalid"
    other = m.decode_error(c.ErrorType.UNKNOWN_PROG, c.OKOPY_VENDOR_ID, b"\x04\x04")
    assert other is not None
    assert other.text is None
    assert m.decode_error(1, 0x2320, b"") is None
