"""`okopy replay`: a capture through a policy in the real patched switch.

The oracles are independent of the replay: libokovm run directly on each
packet (the switch path must give the same verdicts and deliver exactly
the packets the program passes), connection state that only a stateful
program carries from one packet to the next, and the two policies of
--against differing in one map entry."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest

from okopy import cli
from okopy.bpf import vm
from okopy.bpf.toolchain import compile_program
from okopy.traffic import pcap
from okopy.traffic.packets import (
    ETH_P_ARP,
    ETH_P_IP,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_SYN,
    ethernet,
    icmp_echo,
    ipv4,
    tcp,
    udp,
)

ROOT = Path(__file__).resolve().parents[2]
XDP_PASS = 2
BLOCKED = "10.9.9.9"


def replay(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert cli.main(["replay", *args, "--json"]) == 0
    out: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return out


BLOCKLIST_FLOWS = """\
              - {table: 0, priority: 100, match: {eth_type: 0x800},
                 actions: [{bpf: {prog: block, table: 1}}]}
              - {table: 1, priority: 100, match: {bpf_verdict: pass}, actions: [{output: 2}]}
              - {table: 1, priority: 0, actions: [drop]}
              - {table: 0, priority: 0, actions: [drop]}
"""


def blocklist_policy(path: Path, blocked: str, flows: str = BLOCKLIST_FLOWS) -> Path:
    """A policy of blocklist.c on switch "edge", blocking 'blocked'."""
    head = textwrap.dedent(f"""\
        version: 1
        programs:
          block: {{source: {ROOT}/bpf/blocklist.c, id: 3}}
        switches:
          edge:
            dpid: 0x5
            programs: [block]
            maps:
              block:
                blocked_v4:
                  - {{key: {blocked}, value: {{}}}}
            flows:
        """)
    path.write_text(head + flows)
    return path


def mixed_capture(path: Path, n: int, seed: int = 7) -> list[bytes]:
    """IPv4 TCP, UDP and ICMP to a few destinations (one blocked), ARP,
    and IPv4 frames cut short inside their headers."""
    rng = random.Random(seed)
    frames = []
    for i in range(n):
        dst = rng.choice(["10.0.0.2", "10.0.0.3", BLOCKED])
        src = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 200)}"
        kind = rng.randrange(6)
        if kind == 0:
            seg = tcp(src, dst, rng.randrange(1024, 65535), 80)
            frames.append(ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_TCP, seg)))
        elif kind == 1:
            seg = udp(src, dst, rng.randrange(1024, 65535), 53, b"q")
            frames.append(ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_UDP, seg)))
        elif kind == 2:
            frames.append(ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_ICMP, icmp_echo(1, i))))
        elif kind == 3:
            frames.append(ethernet(ETH_P_ARP, bytes(28)))
        elif kind == 4:
            whole = ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_UDP, udp(src, dst, 1, 2)))
            frames.append(whole[: rng.randrange(15, 33)])
        else:
            seg = tcp(src, dst, 40000 + i, 443, TCP_SYN | TCP_ACK)
            frames.append(ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_TCP, seg)))
    pcap.write(path, frames)
    return frames


def test_fates_agree_with_the_program_run_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = blocklist_policy(tmp_path / "policy.yaml", BLOCKED)
    frames = mixed_capture(tmp_path / "t.pcap", 300)
    got = replay(capsys, str(policy), "--pcap", str(tmp_path / "t.pcap"),
                 "--switch", "edge", "--in-port", "1")  # fmt: skip

    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "block.o")
    prog = vm.Namespace("replay-oracle").load(obj.read_bytes())
    m = prog.map("blocked_v4")
    m.update(m.encode_key(BLOCKED), m.encode_value({}))

    assert got["packets"] == len(frames) == len(got["per_packet"])
    ran = 0
    for frame, fate in zip(frames, got["per_packet"], strict=True):
        n = fate["packet"]
        if frame[12:14] != b"\x08\x00":
            # Not IPv4: table 0 drops it before any program.
            assert (fate["outputs"], fate["programs"]) == ([], []), n
            continue
        ran += 1
        verdict = prog.run(frame, 1)
        name = {1: "drop", 2: "pass"}[verdict]
        assert fate["programs"] == [{"program": "block", "verdict": name}], n
        assert fate["outputs"] == (["2"] if verdict == XDP_PASS else []), n
    delivered = sum(1 for f in got["per_packet"] if f["outputs"])
    assert got["delivered"] == delivered
    assert got["dropped"] == len(frames) - delivered
    assert 0 < delivered < ran  # both fates occur


def test_connection_state_carries_from_packet_to_packet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The same reply packet is dropped before its connection's first
    packet and accepted after it: only map state told them apart."""
    (tmp_path / "rules.save").write_text(
        textwrap.dedent("""\
        *filter
        :FORWARD DROP [0:0]
        -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A FORWARD -s 10.0.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT
        COMMIT
        """)
    )
    policy = tmp_path / "acl.yaml"
    assert cli.main(["import", "iptables", str(tmp_path / "rules.save"), "-o", str(policy)]) == 0
    syn = tcp("10.0.0.1", "10.0.0.2", 4000, 80, TCP_SYN, seq=100)
    reply = tcp("10.0.0.2", "10.0.0.1", 80, 4000, TCP_SYN | TCP_ACK, seq=500, ack=101)
    frames = [
        ethernet(ETH_P_IP, ipv4("10.0.0.2", "10.0.0.1", IPPROTO_TCP, reply)),
        ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, syn)),
        ethernet(ETH_P_IP, ipv4("10.0.0.2", "10.0.0.1", IPPROTO_TCP, reply)),
    ]
    pcap.write(tmp_path / "c.pcap", frames)
    got = replay(capsys, str(policy), "--pcap", str(tmp_path / "c.pcap"),
                 "--switch", "s1", "--in-port", "1")  # fmt: skip
    fates = got["per_packet"]
    assert [f["delivered"] for f in fates] == [False, True, True]
    assert fates[0]["programs"] == [{"program": "acl", "verdict": "drop"}]
    assert fates[2]["programs"] == [{"program": "acl", "verdict": "pass"}]
    # NORMAL from port 1 floods to the only other port, the bridge's own.
    assert fates[1]["outputs"] == ["LOCAL"]
    assert fates[0]["summary"] == "10.0.0.2:80 > 10.0.0.1:4000 TCP [SA]"


def test_against_reports_exactly_the_packets_that_differ(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = blocklist_policy(tmp_path / "one.yaml", BLOCKED)
    two = blocklist_policy(tmp_path / "two.yaml", "10.0.0.3")
    frames = mixed_capture(tmp_path / "t.pcap", 120, seed=11)
    got = replay(capsys, str(one), "--pcap", str(tmp_path / "t.pcap"), "--switch", "edge",
                 "--in-port", "1", "--against", str(two))  # fmt: skip

    # IPv4 frames long enough for the program to read the destination.
    def dst(frame: bytes) -> str | None:
        if frame[12:14] != b"\x08\x00" or len(frame) < 34:
            return None
        return ".".join(str(b) for b in frame[30:34])

    expect = [i + 1 for i, f in enumerate(frames) if dst(f) in (BLOCKED, "10.0.0.3")]
    assert [d["packet"] for d in got["differ"]] == expect
    for d in got["differ"]:
        blocked_by_one = dst(frames[d["packet"] - 1]) == BLOCKED
        assert d["policy"]["delivered"] is not blocked_by_one
        assert d["against"]["delivered"] is blocked_by_one
    assert got["policy"]["packets"] == got["against"]["packets"] == len(frames)


def test_four_programs_ten_thousand_packets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cap = tmp_path / "10k.pcap"
    ports = "sport 40000-40049 dport 80,443,22,8080,25,53,123,161,514,993"
    assert cli.main(["pcap", "-w", str(cap),
                     f"tcp src 10.0.0.1-10.0.0.9 dst 10.0.0.2,10.0.0.3 {ports}",
                     f"tcp src 203.0.113.5 dst 10.0.0.2,10.0.0.3 {ports}"]) == 0  # fmt: skip
    got = replay(capsys, str(ROOT / "examples/demo/policy.yaml"), "--pcap", str(cap),
                 "--switch", "s1", "--in-port", "1")  # fmt: skip
    assert got["packets"] == 10000 == got["delivered"] + got["dropped"]
    for fate in got["per_packet"]:
        names = [r["program"] for r in fate["programs"]]
        # hh always runs; each later program only after its predecessor passed.
        assert names == ["hh", "block", "limit", "synguard"][: len(names)]
        assert names
        if fate["summary"].startswith("203.0.113.5:"):  # the policy blocks 203.0.113.0/24
            assert fate["programs"][1] == {"program": "block", "verdict": "drop"}
            assert not fate["delivered"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--switch", "nope", "--in-port", "1"], "no switch 'nope' (switches: edge)"),
        (["--switch", "edge", "--in-port", "0"], "--in-port 0: give a port number from 1"),
    ],
)
def test_refusals_name_the_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    policy = blocklist_policy(tmp_path / "policy.yaml", BLOCKED)
    mixed_capture(tmp_path / "t.pcap", 3)
    capsys.readouterr()
    assert cli.main(["replay", str(policy), "--pcap", str(tmp_path / "t.pcap"), *args]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the capture holds no packets"),
        (b"not a pcap at all, but long enough to have a header", "t.pcap"),
    ],
)
def test_bad_captures_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    policy = blocklist_policy(tmp_path / "policy.yaml", BLOCKED)
    if content:
        (tmp_path / "t.pcap").write_bytes(content)
    else:
        pcap.write(tmp_path / "t.pcap", [])
    capsys.readouterr()
    rc = cli.main(["replay", str(policy), "--pcap", str(tmp_path / "t.pcap"),
                   "--switch", "edge", "--in-port", "1"])  # fmt: skip
    assert rc == 1
    assert message in capsys.readouterr().err


def test_packets_sent_to_the_controller_are_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flows = """\
              - {table: 0, priority: 100, match: {eth_type: 0x800},
                 actions: [{bpf: {prog: block}}, controller, {output: 4}]}
"""
    policy = blocklist_policy(tmp_path / "policy.yaml", BLOCKED, flows)
    frames = mixed_capture(tmp_path / "t.pcap", 20, seed=3)
    got = replay(capsys, str(policy), "--pcap", str(tmp_path / "t.pcap"),
                 "--switch", "edge", "--in-port", "1")  # fmt: skip
    for frame, fate in zip(frames, got["per_packet"], strict=True):
        ip = frame[12:14] == b"\x08\x00"
        assert fate["outputs"] == (["4", "controller"] if ip else []), fate["packet"]


def test_frames_without_an_ethernet_header_are_reported_not_injected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = blocklist_policy(tmp_path / "policy.yaml", BLOCKED)
    whole = ethernet(
        ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, udp("10.0.0.1", "10.0.0.2", 1, 2))
    )
    pcap.write(tmp_path / "t.pcap", [b"", whole[:5], whole])
    got = replay(capsys, str(policy), "--pcap", str(tmp_path / "t.pcap"),
                 "--switch", "edge", "--in-port", "1")  # fmt: skip
    fates = got["per_packet"]
    assert [f.get("note") for f in fates[:2]] == [
        "not injected: 0 bytes, no whole Ethernet header",
        "not injected: 5 bytes, no whole Ethernet header",
    ]
    assert [f["delivered"] for f in fates] == [False, False, True]
