"""BTF conversion of map keys and values, on a clang-compiled object."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from okopy.bpf import elf
from okopy.bpf.btf import ADDRESS_TYPEDEFS, BIG_ENDIAN_TYPEDEFS, Btf, BtfError
from okopy.bpf.toolchain import compile_program

PROGS = Path(__file__).resolve().parent.parent / "progs"


@pytest.fixture(scope="module")
def btf(tmp_path_factory: pytest.TempPathFactory) -> Btf:
    obj = compile_program(PROGS / "typed_maps.c", tmp_path_factory.mktemp("btf") / "typed.o")
    return Btf.parse(elf.sections(obj.read_bytes())[".BTF"].data)


def type_id(btf: Btf, name: str) -> int:
    t = btf.by_name(name)
    assert t is not None, name
    return t.type_id


def test_flow_key_round_trip(btf: Btf) -> None:
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
    assert btf.decode(tid, raw) == value


def test_flow_value_kinds(btf: Btf) -> None:
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
    assert btf.decode(tid, raw) == value
    assert struct.unpack_from("<Q", raw)[0] == 2**40


def test_partial_values_are_zero_filled(btf: Btf) -> None:
    tid = type_id(btf, "flow_key")
    raw = btf.encode(tid, {"proto": 17})
    assert btf.decode(tid, raw)["saddr"] == "0.0.0.0"


def test_ipv6_lpm_key(btf: Btf) -> None:
    tid = type_id(btf, "lpm_v6_key")
    raw = btf.encode(tid, {"prefixlen": 32, "addr": "2001:db8::1"})
    assert raw[:4] == (32).to_bytes(4, "little")
    assert btf.decode(tid, raw) == {"prefixlen": 32, "addr": "2001:db8::1"}


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
         "truncated BTF type"),
    ],
)  # fmt: skip
def test_malformed_btf(blob: bytes, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        Btf.parse(blob)


def test_typedef_contract_matches_header() -> None:
    """bpf/include/okopy/types.h declares every typedef btf.py interprets."""
    header = (PROGS.parent.parent / "bpf/include/okopy/types.h").read_text()
    for name in [*ADDRESS_TYPEDEFS, *BIG_ENDIAN_TYPEDEFS]:
        if name.startswith("okopy_"):
            assert f" {name};" in header, name
