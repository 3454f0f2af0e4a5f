"""`okopy pcap`: traffic descriptions, the frames they give, and errors that
name the wrong word."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.cli import main
from okopy.traffic import describe, packets, pcap


def frames(*args: str) -> list[bytes]:
    return [f for d in describe.parse(args) for f in d.frames()]


def test_one_udp_packet_is_the_builders() -> None:
    assert frames("udp src 10.0.0.1 dst 10.0.0.2 dport 9999") == [
        packets.udp4("10.0.0.1", "10.0.0.2", describe.DEFAULT_SPORT, 9999)
    ]


def test_tcp_flags_payload_and_ipv6() -> None:
    (syn_ack,) = frames("tcp src 2001:db8::1 dst 2001:db8::2 sport 1 dport 80 flags SA payload 3")
    assert syn_ack == packets.tcp6("2001:db8::1", "2001:db8::2", 1, 80,
                                   packets.TCP_SYN | packets.TCP_ACK, payload=bytes(3))  # fmt: skip
    (syn,) = frames("tcp src 10.0.0.1 dst 10.0.0.2 dport 22")
    assert syn == packets.tcp4("10.0.0.1", "10.0.0.2", 40000, 22, packets.TCP_SYN)
    (every,) = frames("tcp src 10.0.0.1 dst 10.0.0.2 dport 22 flags fsrpauec")
    assert every[14 + 20 + 13] == 0xFF


def test_icmp_is_an_echo_request_numbered_in_order() -> None:
    v4 = frames("icmp src 10.0.0.1 dst 10.0.0.2 count 2")
    assert v4 == [packets.icmp4("10.0.0.1", "10.0.0.2", 1, seq, b"") for seq in (1, 2)]
    (v6,) = frames("icmp src ::1 dst ::2")
    assert v6 == packets.icmp6("::1", "::2", 1, 1, b"")
    assert v6[14 + 40] == 128  # ICMPv6 echo request
    # The checksum is right: summing the pseudo-header and message gives 0.
    msg = v6[14 + 40 :]
    assert packets.checksum(bytes(16 * 2 - 1) + b"\1" + bytes(15) + b"\2"
                            + len(msg).to_bytes(4, "big") + b"\0\0\0\x3a" + msg) == 0  # fmt: skip


def test_sweeps_give_every_combination_count_times() -> None:
    (d,) = describe.parse(["udp src 10.0.0.0/31,10.0.0.9 dst 10.0.0.2 sport 5-6 dport 53 count 2"])
    assert len(d) == 3 * 2 * 2
    got = [(f[26:30], int.from_bytes(f[34:36], "big")) for f in d.frames()]
    a0, a1, a9 = (bytes([10, 0, 0, n]) for n in (0, 1, 9))
    once = [(a0, 5), (a0, 6), (a1, 5), (a1, 6), (a9, 5), (a9, 6)]
    assert got == once + once


def test_address_ranges_ipv6_too() -> None:
    (d,) = describe.parse(["udp src 2001:db8::fe-2001:db8::101 dst 2001:db8::1 dport 1"])
    assert [f[22 + 14 : 22 + 16].hex() for f in d.frames()] == ["00fe", "00ff", "0100", "0101"]


def test_words_split_at_each_protocol() -> None:
    ds = describe.parse(["udp", "src", "10.0.0.1", "dst", "10.0.0.2", "dport", "53",
                         "tcp src 10.0.0.1 dst 10.0.0.2 dport 80", "icmp src", "::1 dst ::2"])  # fmt: skip
    assert [(d.proto, d.version, len(d)) for d in ds] == [("udp", 4, 1), ("tcp", 4, 1),
                                                          ("icmp", 6, 1)]  # fmt: skip
    assert ds[2].text == "icmp src ::1 dst ::2"


def test_timestamps_follow_the_interval() -> None:
    ds = describe.parse(["icmp src 10.0.0.1 dst 10.0.0.2 count 3"])
    stamps = [p.timestamp_ns for p in describe.timed(ds, 250_000)]
    assert stamps == [1_000_000_000, 1_000_250_000, 1_000_500_000]


# fmt: off
BAD = [
    ("sctp src 10.0.0.1 dst 10.0.0.2", "'sctp' is not a protocol: a description starts with udp, tcp, icmp"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 53 sctp", "packet 1 ('udp src 10.0.0.1 dst 10.0.0.2 dport 53 sctp'): unknown field 'sctp'"),
    ("udp src 10.0.0.1 dst 10.0.0.2 port 53", "unknown field 'port' (fields: src, dst, sport, dport, flags, payload, count)"),
    ("udp src 10.0.0.300 dst 10.0.0.2 dport 53", "src '10.0.0.300' is not an IPv4 or IPv6 address"),
    ("udp src 10.0.0.1 dst 10.0.0.2/33 dport 53", "dst '10.0.0.2/33' is not a prefix (address/length)"),
    ("udp src 10.0.0.9-10.0.0.1 dst 10.0.0.2 dport 53", "src range '10.0.0.9-10.0.0.1' runs backwards"),
    ("udp src 10.0.0.1-20 dst 10.0.0.2 dport 53", "src range '10.0.0.1-20': its end '20' is not an IPv4 or IPv6 address"),
    ("udp src 10.0.0.1-::1 dst 10.0.0.2 dport 53", "src range '10.0.0.1-::1' mixes IPv4 and IPv6"),
    ("udp src 10.0.0.1,::1 dst 10.0.0.2 dport 53", "src '10.0.0.1,::1' mixes IPv4 and IPv6"),
    ("udp src 10.0.0.1 dst ::2 dport 53", "src is IPv4 but dst is IPv6"),
    ("udp dst 10.0.0.2 dport 53", "src is missing"),
    ("udp src 10.0.0.1 dst 10.0.0.2", "dport is missing (udp needs a destination port)"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 65536", "dport 65536 is out of range (0-65535)"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 53 sport 9-x", "sport 'x' is not a number"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 90-80", "dport range '90-80' runs backwards"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 53 flags S", "flags 'S': only tcp has flags, not udp"),
    ("tcp src 10.0.0.1 dst 10.0.0.2 dport 53 flags SX", "flags 'SX': unknown flag 'X' (scapy's letters: F S R P A U E C)"),
    ("icmp src 10.0.0.1 dst 10.0.0.2 dport 53", "dport: icmp has no ports"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 53 count 0", "count 0 is out of range (1-1000000)"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport 53 payload 70000", "payload 70000 is out of range (0-65000)"),
    ("udp src dst 10.0.0.2 dport 53", "src needs a value"),
    ("udp src 10.0.0.1 dst 10.0.0.2 dport", "dport needs a value"),
    ("udp src 10.0.0.1 src 10.0.0.3 dst 10.0.0.2 dport 53", "src is given twice"),
    ("udp src 10.0.0.0/8 dst 10.0.0.2 dport 53", "that is 16777216 packets; at most 1000000 at once"),
    ("", "describe at least one packet"),
]
# fmt: on


@pytest.mark.parametrize(("text", "message"), BAD, ids=[t or "empty" for t, _ in BAD])
def test_bad_descriptions_name_the_wrong_word(text: str, message: str) -> None:
    with pytest.raises(describe.DescriptionError) as info:
        describe.parse([text])
    assert message in str(info.value)


def test_second_description_is_numbered() -> None:
    with pytest.raises(describe.DescriptionError, match=r"^packet 2 \('tcp src 10.0.0.1 dst"):
        describe.parse(["udp src 10.0.0.1 dst 10.0.0.2 dport 53",
                        "tcp src 10.0.0.1 dst 10.0.0.2"])  # fmt: skip


def test_cli_writes_a_pcap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.pcap"
    assert main(["pcap", "-w", str(out), "-i", "0.5",
                 "udp src 10.0.0.1 dst 10.0.0.2 dport 9999 count 2",
                 "icmp src 10.0.0.1 dst 10.0.0.2"]) == 0  # fmt: skip
    got = pcap.read(out)
    assert [p.timestamp_ns for p in got] == [1_000_000_000, 1_500_000_000, 2_000_000_000]
    assert got[0].data == packets.udp4("10.0.0.1", "10.0.0.2", 40000, 9999)
    assert capsys.readouterr().out.splitlines() == [
        f"{out}: 3 packets",
        "        2  udp src 10.0.0.1 dst 10.0.0.2 dport 9999 count 2",
        "        1  icmp src 10.0.0.1 dst 10.0.0.2",
    ]


def test_cli_error_names_the_word(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.pcap"
    assert main(["pcap", "-w", str(out), "udp src 10.0.0.1 dst 10.0.0.2 dport 99999"]) == 1
    assert capsys.readouterr().err == (
        "okopy: error: packet 1 ('udp src 10.0.0.1 dst 10.0.0.2 dport 99999'): "
        "dport 99999 is out of range (0-65535)\n"
    )
    assert not out.exists()
