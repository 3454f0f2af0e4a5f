"""BTF conversion of map keys and values, on a clang-compiled object."""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from okopy.bpf import elf
from okopy.bpf.btf import Btf, BtfError, decode_or_hex, parse_entry_text
from okopy.bpf.toolchain import compile_program
from tests.btf_blobs import FLOAT, INT, PTR, TYPEDEF, BtfWriter

PROGS = Path(__file__).resolve().parent.parent / "progs"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def btf(tmp_path_factory: pytest.TempPathFactory) -> Btf:
    obj = compile_program(PROGS / "typed_maps.c", tmp_path_factory.mktemp("btf") / "typed.o")
    return Btf.parse(elf.sections(obj.read_bytes())[".BTF"].data)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """type name -> the bytes clang gives the value in data/typed_values.c."""
    out = tmp_path_factory.mktemp("values") / "typed_values.o"
    obj = compile_program(DATA / "typed_values.c", out, includes=[PROGS])
    secs = elf.sections(obj.read_bytes())
    return {name.removeprefix(".rodata."): s.data for name, s in secs.items()
            if name.startswith(".rodata.")}  # fmt: skip


def type_id(btf: Btf, name: str) -> int:
    tid = btf.find_type(name)
    assert tid, name
    return tid


def test_flow_key_round_trip(btf: Btf, compiled: dict[str, bytes]) -> None:
    tid = type_id(btf, "flow_key")
    value = {
        "saddr": "10.0.0.1",
        "daddr": "192.0.2.7",
        "sport": 443,
        "dport_host": 8080,
        "proto": 6,
        "pad": "000000",
    }
    raw = btf.encode(tid, value)
    assert len(raw) == 16
    # Addresses and __be16 in network order, plain __u16 in host order.
    assert raw[:8] == bytes([10, 0, 0, 1, 192, 0, 2, 7])
    assert raw[8:10] == (443).to_bytes(2, "big")
    assert raw[10:12] == (8080).to_bytes(2, "little")
    assert raw == compiled["flow_key"]
    assert btf.decode(tid, compiled["flow_key"]) == value


def test_flow_value_kinds(btf: Btf, compiled: dict[str, bytes]) -> None:
    tid = type_id(btf, "flow_val")
    value = {
        "packets": 2**40,
        "delta": -5,
        "state": "ESTABLISHED",
        "label": "web",
        "raw": "deadbeef",
        "mac": "02:00:00:00:00:01",
        "flag": 1,
        "level": 5,
        "hist": [1, 2, 3],
    }
    raw = btf.encode(tid, value)
    # Every kind (signed, enum, char array, byte array, MAC, bitfields,
    # array) where clang puts it, and read back from clang's bytes.
    assert raw == compiled["flow_val"]
    assert btf.decode(tid, compiled["flow_val"]) == value
    assert struct.unpack_from("<Q", raw)[0] == 2**40


def test_ovs_syntax(btf: Btf, compiled: dict[str, bytes]) -> None:
    """The syntax ovs-ofctl prints, from the same walk as the JSON."""
    key = btf.format(type_id(btf, "flow_key"), compiled["flow_key"])
    assert key == "{saddr=10.0.0.1,daddr=192.0.2.7,sport=443,dport_host=8080,proto=6,pad=000000}"
    val = btf.format(type_id(btf, "flow_val"), compiled["flow_val"])
    assert val == (
        '{packets=1099511627776,delta=-5,state=ESTABLISHED,label="web",raw=deadbeef,'
        "mac=02:00:00:00:00:01,flag=1,level=5,hist=[1,2,3]}"
    )
    tid = type_id(btf, "flow_key")
    raw = compiled["flow_key"]
    assert btf.format(tid, raw, "json") == json.dumps(btf.decode(tid, raw))
    # What ovs-ofctl prints reads back, with spaces and hex as it takes them.
    assert btf.parse_text(tid, key) == raw
    assert btf.parse_text(type_id(btf, "flow_val"), val) == compiled["flow_val"]
    assert btf.parse_text(tid, "{ saddr = 10.0.0.1 , sport = 0x1bb }") == btf.encode(
        tid, {"saddr": "10.0.0.1", "sport": 443}
    )
    assert btf.parse_text(tid, json.dumps({"proto": 6}), "json") == btf.encode(tid, {"proto": 6})
    with pytest.raises(BtfError, match=r"struct flow_key\.sport: 70000 does not fit in 2 bytes"):
        btf.parse_text(tid, "{sport=70000}")
    with pytest.raises(BtfError, match="invalid value at byte 6: expected '='"):
        btf.parse_text(tid, "{proto}")


def test_ovs_syntax_escapes_strings() -> None:
    w = BtfWriter()
    char = w.integer("char", 1, encoding=1)
    arr = w.array(char, w.integer("int", 4), 6)
    btf = Btf.parse(w.blob())
    assert btf.format(arr, b'a"b\\\x01\xff') == '"a\\"b\\\\\\x01\\xff"'
    assert btf.format(arr, b"ab\0cd\0") == '"ab"'
    assert json.loads(btf.format(arr, b'a"b\\\x01\0', "json")) == 'a"b\\\x01'


def test_big_endian_pointer_round_trips() -> None:
    """A __be32 typedef that names a pointer (found by the vm-btf fuzz
    target): decoding read it little-endian, encoding wrote it big-endian."""
    w = BtfWriter()
    ptr = w.ref(PTR, w.integer("unsigned int", 4))
    be = w.ref(TYPEDEF, ptr, "__be32")
    btf = Btf.parse(w.blob())
    raw = bytes([0, 0xBA, 0, 0, 0, 6, 0, 0])
    value = btf.decode(be, raw)
    assert value == int.from_bytes(raw, "big")
    assert btf.encode(be, value) == raw


def test_partial_values_are_zero_filled(btf: Btf) -> None:
    tid = type_id(btf, "flow_key")
    raw = btf.encode(tid, {"proto": 17})
    assert btf.decode(tid, raw)["saddr"] == "0.0.0.0"


def test_ipv6_lpm_key(btf: Btf, compiled: dict[str, bytes]) -> None:
    tid = type_id(btf, "lpm_v6_key")
    raw = btf.encode(tid, {"prefixlen": 32, "addr": "2001:db8::1"})
    assert raw[:4] == (32).to_bytes(4, "little")
    assert raw == compiled["lpm_v6_key"]
    assert btf.decode(tid, compiled["lpm_v6_key"]) == {"prefixlen": 32, "addr": "2001:db8::1"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"nope": 1}, "unknown field 'nope'"),
        ({"saddr": "10.0.0.300"}, "not an IP address"),
        ({"saddr": "2001:db8::1"}, "not an IPv4 address"),
        ({"sport": 70000}, "does not fit in 2 bytes"),
        ({"proto": -1}, "does not fit in 1 bytes"),
        ({"proto": "six"}, "expected an integer"),
        ({"pad": "zz"}, "is not hex"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_values_name_the_field(btf: Btf, value: object, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        btf.encode(type_id(btf, "flow_key"), value)


def test_bad_enum_name(btf: Btf) -> None:
    with pytest.raises(BtfError, match="not one of CLOSED, SYN_SENT, ESTABLISHED"):
        btf.encode(type_id(btf, "flow_val"), {"state": "LISTEN"})


def test_decode_checks_size(btf: Btf) -> None:
    with pytest.raises(BtfError, match="16 bytes, got 3"):
        btf.decode(type_id(btf, "flow_key"), b"abc")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "shorter than its header"),
        (b"\x00" * 24, "bad BTF magic"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 100, 0, 0), "past the end"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 4, 4, 1) + b"\0" * 5,
         "BTF type 1 is truncated"),
    ],
)  # fmt: skip
def test_malformed_btf(blob: bytes, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        Btf.parse(blob)


def test_typedef_contract_matches_header() -> None:
    """bpf/include/okopy/types.h declares every okopy_ typedef the codec
    (vm/src/btf-codec.c) interprets, and the codec interprets every one."""
    root = PROGS.parent.parent
    header = (root / "bpf/include/okopy/types.h").read_text()
    codec = (root / "vm/src/btf-codec.c").read_text()
    table = codec[
        codec.index("conventions[] = {") : codec.index("};", codec.index("conventions[]"))
    ]
    interpreted = set(re.findall(r'\{ "(\w+)", CONV_', table))
    assert {"__be16", "__be32", "__be64", "okopy_ipv4_t"} <= interpreted
    declared = set(re.findall(r"\b(okopy_\w+);", header))
    assert {n for n in interpreted if n.startswith("okopy_")} == declared


# Hostile BTF: every refusal says what is wrong, nothing crashes or hangs.


def _u32(w: BtfWriter) -> int:
    return w.integer("unsigned int", 4)


def _dangling() -> tuple[bytes, int]:
    w = BtfWriter()
    w.struct("s", 4, [("a", 99, 0, 0)])
    return w.blob(), 1


def _typedef_loop() -> tuple[bytes, int]:
    w = BtfWriter()
    w.ref(TYPEDEF, 2, "a")
    w.ref(TYPEDEF, 1, "b")
    return w.blob(), 1


def _array_of_itself() -> tuple[bytes, int]:
    w = BtfWriter()
    u32 = _u32(w)
    w.array(2, u32, 2)
    return w.blob(), 2


def _struct_in_itself() -> tuple[bytes, int]:
    w = BtfWriter()
    w.struct("s", 4, [("self", 1, 0, 0)])
    return w.blob(), 1


def _huge_array() -> tuple[bytes, int]:
    w = BtfWriter()
    u32 = _u32(w)
    w.array(u32, u32, 1 << 31)
    return w.blob(), 2


def _endless_empty_array() -> tuple[bytes, int]:
    w = BtfWriter()
    u32 = _u32(w)
    empty = w.struct("empty", 0, [])
    w.array(empty, u32, 1 << 31)
    return w.blob(), 3


def _bad_name() -> tuple[bytes, int]:
    w = BtfWriter()
    w.raw(5000, INT << 24, 4, struct.pack("<I", 32))
    return w.blob(), 1


def _bitfield_outside() -> tuple[bytes, int]:
    w = BtfWriter()
    u32 = _u32(w)
    w.struct("s", 4, [("a", u32, 30, 8)])
    return w.blob(), 2


def _member_outside() -> tuple[bytes, int]:
    w = BtfWriter()
    u32 = _u32(w)
    w.struct("s", 4, [("a", u32, 32, 0)])
    return w.blob(), 2


def _unknown_kind() -> tuple[bytes, int]:
    w = BtfWriter()
    w.raw(0, 25 << 24, 4)
    return w.blob(), 1


def _int_too_wide() -> tuple[bytes, int]:
    w = BtfWriter()
    w.integer("wide", 32)
    return w.blob(), 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_dangling, "BTF type 1 refers to type 99, which does not exist"),
        (_typedef_loop, "chain of references does not end"),
        (_bad_name, "name at offset 5000, outside the string section"),
        (_unknown_kind, "BTF type 1 has unknown kind"),
    ],
)
def test_hostile_btf_refused_at_parse(make: Any, message: str) -> None:
    blob, _ = make()
    with pytest.raises(BtfError, match=message):
        Btf.parse(blob)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_array_of_itself, "arrays nested deeper than 32 levels"),
        (_struct_in_itself, r"struct s(\.self)+: nested deeper than 32 levels"),
        (_huge_array, "is 8589934592 bytes, more than 1073741824"),
        (_endless_empty_array, "more than 1048576 parts"),
        (_bitfield_outside, r"bitfield a \(8 bits at bit 30\) does not fit in 4 bytes"),
        (_member_outside, r"member a \(4 bytes at byte 4\) lies outside the 4-byte type"),
        (_int_too_wide, "cannot decode a 32-byte integer"),
    ],
)
def test_hostile_btf_refused_in_use(make: Any, message: str) -> None:
    blob, tid = make()
    btf = Btf.parse(blob)
    with pytest.raises(BtfError, match=message):
        btf.decode(tid, bytes(btf.size_of(tid)))
    assert decode_or_hex(btf, tid, b"\x01") == "01"


def test_hostile_btf_refused_when_encoding() -> None:
    blob, tid = _struct_in_itself()
    with pytest.raises(BtfError, match="nested deeper than 32 levels"):
        Btf.parse(blob).encode(tid, _nest(40))


def _nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"self": value}
    return value


def test_every_truncation_refused(btf: Btf) -> None:
    """Each cut of a real BTF section is refused with a message (or, cut in
    its string section's padding, accepted), never a crash."""
    raw = btf.raw
    refused = 0
    for cut in range(0, len(raw), 7):
        try:
            Btf.parse(raw[:cut])
        except BtfError as e:
            refused += bool(str(e))
    assert refused >= len(raw) // 7 - 2


def test_json_errors_name_the_fault(btf: Btf) -> None:
    tid = type_id(btf, "flow_key")
    with pytest.raises(BtfError, match=r"expected an integer, got 1\.5"):
        btf.encode(tid, {"proto": 1.5})
    with pytest.raises(BtfError, match="is not a JSON value"):
        btf.encode(tid, {"proto": object()})
    assert btf.encode(tid, {"proto": "0x1_1"})[12] == 0x11


def test_addresses_and_text_read_as_python_reads_them(btf: Btf) -> None:
    """The codec's IPv6 spelling and its UTF-8 repair agree with Python's
    ipaddress and bytes.decode("utf-8", "replace"), which okopy used, but
    for IPv4-mapped addresses, in RFC 5952's mixed notation (as Python
    3.13 writes them)."""
    rng = random.Random(5)
    v6 = type_id(btf, "lpm_v6_key")
    val = type_id(btf, "flow_val")
    size = btf.size_of(val)
    for _ in range(400):
        groups = [rng.choice([0, 0, 1, 0xFFFF, rng.randrange(1 << 16)]) for _ in range(8)]
        if rng.random() < 0.1:
            groups[:6] = [0, 0, 0, 0, 0, 0xFFFF]
        addr = b"".join(g.to_bytes(2, "big") for g in groups)
        got = btf.decode(v6, bytes(4) + addr)["addr"]
        want = str(ipaddress.IPv6Address(addr))
        if addr[:12] == bytes(10) + b"\xff\xff":  # RFC 5952 section 5
            want = f"::ffff:{ipaddress.IPv4Address(addr[12:])}"
        assert got == want
        assert btf.encode(v6, {"addr": got})[4:] == addr
        label = bytes(rng.choice([0x41, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0xFF, 0x80])
                      for _ in range(8))  # fmt: skip
        offset = btf.encode(val, {"label": "ABCDEFGH"}).index(b"ABCDEFGH")
        raw = bytearray(size)
        raw[offset : offset + 8] = label
        want = label.split(b"\0", 1)[0].decode("utf-8", "replace")
        assert btf.decode(val, bytes(raw))["label"] == want


def test_floats_read_as_python_reads_them() -> None:
    w = BtfWriter()
    f32 = w.raw(w.name("float"), FLOAT << 24, 4)
    f64 = w.raw(w.name("double"), FLOAT << 24, 8)
    btf = Btf.parse(w.blob())
    rng = random.Random(7)
    for _ in range(500):
        for tid, fmt in ((f32, "<f"), (f64, "<d")):
            raw = rng.randbytes(struct.calcsize(fmt))
            (want,) = struct.unpack(fmt, raw)
            got = btf.decode(tid, raw)
            if math.isnan(want):
                assert math.isnan(got)
                continue
            assert got == want
            assert type(got) is float
            assert btf.encode(tid, got) == raw


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("02:00:00:00:00:01", "02:00:00:00:00:01"),
        ("12:34:56:12:34:56", "12:34:56:12:34:56"),
        ("eth0", "eth0"),
        ('"10.0.0.1"', "10.0.0.1"),
        ("7", 7),
        ('"7"', "7"),
        ("-1", -1),
        ("true", True),
        ('{"rate": 5}', {"rate": 5}),
        ("[1, 2]", [1, 2]),
    ],
)
def test_entry_text_bare_or_json(text: str, value: object) -> None:
    assert parse_entry_text(text) == value


@pytest.mark.parametrize("text", ['{"rate": 5', "[1,", '"10.0.0.1', "{rate: 5}", "", " 7x"])
def test_entry_text_that_meant_json(text: str) -> None:
    with pytest.raises(ValueError, match="is not JSON"):
        parse_entry_text(text)
