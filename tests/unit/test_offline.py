"""Offline tools without the VM: ELF and pcap readers, inspect, seeds."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from okopy.bpf import elf, offline
from okopy.bpf.toolchain import CompileError, compile_program
from okopy.traffic import packets, pcap

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def ratelimit(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("obj") / "ratelimit.o"
    return compile_program(ROOT / "bpf/ratelimit.c", out).read_bytes()


def test_inspect_reads_maps_and_types(ratelimit: bytes) -> None:
    info = offline.inspect_object(ratelimit)
    (prog,) = info["programs"]
    assert prog["section"] == "xdp"
    assert prog["functions"] == ["ratelimit"]
    assert prog["instructions"] > 50
    maps = {m["name"]: m for m in info["maps"]}
    assert maps["sources"]["type"] == "lru_hash"
    assert maps["sources"]["key"] == "okopy_ipv4_t"
    assert maps["config"]["value"] == "struct rl_config"
    assert info["license"] == "GPL"
    text = offline.format_inspect(info)
    assert "map sources: lru_hash, key okopy_ipv4_t (4 B)" in text


def test_fix_helpers_rewrites_only_helper_calls(ratelimit: bytes) -> None:
    fixed = elf.fix_helpers(ratelimit, clock_ns=12345)
    assert len(fixed) == len(ratelimit)
    code = elf.sections(ratelimit)["xdp"]
    new = elf.sections(fixed)["xdp"]
    changed = [i for i in range(0, code.size, 8) if code.data[i : i + 8] != new.data[i : i + 8]]
    assert len(changed) == 1
    insn = new.data[changed[0] : changed[0] + 8]
    assert insn[0] == 0xB7  # r0 = imm
    assert struct.unpack_from("<i", insn, 4)[0] == 12345
    with pytest.raises(ValueError, match="31-bit"):
        elf.fix_helpers(ratelimit, clock_ns=1 << 31)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not an ELF file"),
        (b"\x7fELF\x01\x01" + bytes(58), "64-bit little-endian"),
        (b"\x7fELF\x02\x01" + bytes(12) + b"\x3e\x00" + bytes(44), "not BPF"),
    ],
)
def test_elf_refusals(blob: bytes, message: str) -> None:
    with pytest.raises(elf.ElfError, match=message):
        elf.sections(blob)


def test_elf_truncated(ratelimit: bytes) -> None:
    with pytest.raises(elf.ElfError, match="truncated"):
        elf.sections(ratelimit[: len(ratelimit) - 100])


def test_pcap_round_trip(tmp_path: Path) -> None:
    pkts = packets.random_packets(seed=1, count=50)
    path = tmp_path / "t.pcap"
    assert pcap.write(path, pkts) == 50
    back = pcap.read(path)
    assert [p.data for p in back] == pkts
    assert back[1].timestamp_ns == 1000


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"abc", "too short"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "pcapng is not supported"),
        (bytes(24), "not a pcap file"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113), "link type 113"),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            + struct.pack("<IIII", 0, 0, 100, 100)
            + bytes(10),
            "packet 1 data truncated",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + bytes(7),
            "packet 1 header truncated",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            + struct.pack("<IIII", 0, 0, 1 << 30, 100),
            "claims",
        ),
    ],
)
def test_pcap_refusals(blob: bytes, message: str) -> None:
    with pytest.raises(pcap.PcapError, match=message):
        list(pcap.iter_packets(blob, "x.pcap"))


def test_big_endian_microsecond_pcap() -> None:
    blob = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    blob += struct.pack(">IIII", 3, 7, 2, 2) + b"hi"
    (p,) = pcap.iter_packets(blob)
    assert p.timestamp_ns == 3_000_007_000
    assert p.data == b"hi"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('sources="10.0.0.1"={"tat":1}', ("sources", "10.0.0.1", {"tat": 1})),
        ("config=0=0x0a000000", ("config", 0, bytes.fromhex("0a000000"))),
        # Bare text is a string, as in a policy file and ovs-ofctl.
        ("sources=10.0.0.1={}", ("sources", "10.0.0.1", {})),
        ("v6=2001:db8::1=7", ("v6", "2001:db8::1", 7)),
        ("ifs=eth0=1", ("ifs", "eth0", 1)),
    ],
)
def test_parse_seed(spec: str, expected: tuple[object, ...]) -> None:
    assert offline.parse_seed(spec) == expected


@pytest.mark.parametrize(
    "spec", ["nomap", "=1=2", "m=1", 'm=1={"rate": 5', "m=1=[1,", 'm="10.0.0.1=1']
)
def test_parse_seed_refusals(spec: str) -> None:
    with pytest.raises(ValueError, match="seed"):
        offline.parse_seed(spec)


def test_compile_error_shows_clang(tmp_path: Path) -> None:
    src = tmp_path / "bad.c"
    src.write_text("int f(void) { return undeclared; }\n")
    with pytest.raises(CompileError, match="undeclared"):
        compile_program(src)


def test_packets_are_well_formed() -> None:
    pkt = packets.tcp4("10.0.0.1", "10.0.0.2", 1234, 80)
    ip = pkt[14:34]
    assert packets.checksum(ip) == 0
    assert len(packets.random_packets(seed=9, count=100)) == 100
    assert packets.random_packets(seed=9, count=20) == packets.random_packets(seed=9, count=20)
