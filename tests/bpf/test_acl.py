"""bpf/acl.c in the VM and in the kernel: first match, connection state,
counters, and the policy `okopy import iptables` writes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from okopy.acl import iptables as ipt
from okopy.acl.compile import compile_rules, ordered_changes
from okopy.acl.policy import PolicyOptions, from_iptables
from okopy.bpf import vm
from okopy.bpf.kernel import KernelProgram
from okopy.bpf.toolchain import compile_program
from okopy.policy.build import check as check_policy
from okopy.policy.file import load as load_policy
from okopy.testing.acl import ext6_header
from okopy.testing.filtercases import Case, CaseFailure, run_cases
from okopy.traffic import packets as p

ROOT = Path(__file__).resolve().parent.parent.parent
LAN, WAN = 2, 3
C, S, OTHER = "10.0.0.5", "198.51.100.7", "203.0.113.9"
A, SY, F, R, PSH = p.TCP_ACK, p.TCP_SYN, p.TCP_FIN, p.TCP_RST, p.TCP_PSH
REJECT = 16

SAVE = """*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j REJECT
-A FORWARD -i lan -p tcp -m tcp --syn -j ACCEPT
-A FORWARD -i lan -p udp -j ACCEPT
-A FORWARD -i lan -p icmp -m icmp --icmp-type echo-request -j ACCEPT
-A FORWARD -i lan -p 47 -j ACCEPT
COMMIT
"""


def compiled(save: str = SAVE) -> tuple[dict[str, list[tuple[Any, Any]]], tuple[int, ...]]:
    """The seeds of the rules map for 'save', and each rule's position."""
    rules, default = ipt.flatten(ipt.parse_save(save, {"lan": LAN, "wan": WAN}))
    acl = compile_rules(rules, default)
    seeds = {name: [(e["key"], e["value"]) for e in entries] for name, entries in acl.maps.items()}
    return seeds, acl.positions


def tcp(src: str, dst: str, sp: int, dp: int, flags: int, seq: int = 1, ack: int = 0) -> bytes:
    return p.tcp4(src, dst, sp, dp, flags, seq=seq, ack=ack)


def icmp(src: str, dst: str, type_: int, code: int, rest: bytes, body: bytes = b"") -> bytes:
    msg = struct.pack("!BBH", type_, code, 0) + rest + body
    msg = msg[:2] + struct.pack("!H", p.checksum(msg)) + msg[4:]
    return p.ethernet(p.ETH_P_IP, p.ipv4(src, dst, p.IPPROTO_ICMP, msg))


def conn_key(a: tuple[str, int], b: tuple[str, int], proto: int) -> str:
    lo, hi = sorted([a, b], key=lambda e: (tuple(map(int, e[0].split("."))), e[1]))
    return json.dumps(
        {"addr_a": lo[0], "addr_b": hi[0], "port_a": lo[1], "port_b": hi[1], "proto": proto}
    )


def test_connection_state_follows_conntrack(objects: dict[str, bytes]) -> None:
    udp_out = p.udp4(C, S, 5000, 53, b"q")
    quoted = p.ipv4(C, S, p.IPPROTO_UDP, p.udp(C, S, 5000, 53, b"q"))[:28]
    stray_quote = p.ipv4(C, S, p.IPPROTO_UDP, p.udp(C, S, 5001, 53, b"q"))[:28]
    key = conn_key((C, 40000), (S, 80), 6)
    seeds, pos = compiled()
    run_cases(objects["acl"], [
        Case("a SYN from the LAN is NEW and accepted", tcp(C, S, 40000, 80, SY), "pass",
             in_port=LAN, maps={"conns": {key: {"flags": 0}}, "rules": {pos[2]: {"packets": 1}}}),
        Case("the SYN-ACK is a reply: ESTABLISHED", tcp(S, C, 80, 40000, SY | A, 9, 2), "pass",
             in_port=WAN, maps={"conns": {key: {"flags": 1}}, "rules": {pos[0]: {"packets": 1}}}),
        Case("the handshake's ACK", tcp(C, S, 40000, 80, A, 2, 10), "pass", in_port=LAN),
        Case("data from the server", tcp(S, C, 80, 40000, PSH | A, 10, 2), "pass", in_port=WAN),
        Case("a SYN from the WAN opens nothing", tcp(OTHER, C, 1234, 22, SY), "drop",
             in_port=WAN, maps={"conns": {conn_key((OTHER, 1234), (C, 22), 6): None},
                                "rules": {1024: {"packets": 1}}}),
        Case("so the answer to it is INVALID", tcp(C, OTHER, 22, 1234, SY | A), REJECT,
             in_port=LAN, maps={"rules": {pos[1]: {"packets": 1}}}),
        Case("a stray FIN", tcp(C, S, 40001, 80, F | A), REJECT, in_port=LAN),
        Case("a stray RST", tcp(C, S, 40001, 80, R), REJECT, in_port=LAN),
        Case("SYN with FIN is never valid", tcp(C, S, 40000, 80, SY | F), REJECT, in_port=LAN),
        Case("no flags at all", tcp(C, S, 40000, 80, 0), REJECT, in_port=LAN),
        Case("a bare ACK is picked up as NEW (the --syn rule does not take it)",
             tcp(C, S, 40002, 80, A), "drop", in_port=LAN),
        Case("the server resets the connection", tcp(S, C, 80, 40000, R | A, 10, 2), "pass",
             in_port=WAN, maps={"conns": {key: {"flags": 3}}}),
        Case("a new SYN reopens it: NEW again", tcp(C, S, 40000, 80, SY, 100), "pass",
             in_port=LAN, maps={"conns": {key: {"flags": 0}}}),
        Case("UDP from the LAN", udp_out, "pass", in_port=LAN),
        Case("its answer", p.udp4(S, C, 53, 5000, b"a"), "pass", in_port=WAN),
        Case("unasked UDP from the WAN", p.udp4(S, C, 53, 5999, b"a"), "drop", in_port=WAN),
        Case("an ICMP error about the UDP flow is RELATED",
             icmp(S, C, 3, 3, b"\0" * 4, quoted), "pass", in_port=WAN),
        Case("an ICMP error about nothing known is INVALID",
             icmp(S, C, 3, 3, b"\0" * 4, stray_quote), REJECT, in_port=WAN),
        Case("echo request", icmp(C, S, 8, 0, b"\0\x07\0\x01", b"ping"), "pass", in_port=LAN),
        Case("echo reply", icmp(S, C, 0, 0, b"\0\x07\0\x01", b"ping"), "pass", in_port=WAN),
        Case("an echo reply nobody asked for", icmp(S, C, 0, 0, b"\0\x08\0\x01"), REJECT,
             in_port=WAN),
        Case("GRE from the LAN and back", p.ethernet(p.ETH_P_IP, p.ipv4(C, S, 47, b"x" * 8)),
             "pass", in_port=LAN),
        Case("GRE back", p.ethernet(p.ETH_P_IP, p.ipv4(S, C, 47, b"x" * 8)), "pass",
             in_port=WAN),
        Case("a later fragment has no ports: INVALID for conntrack here",
             p.ethernet(p.ETH_P_IP, p.ipv4(C, S, p.IPPROTO_TCP, b"y" * 16, frag=10)), REJECT,
             in_port=LAN),
        Case("IPv6 is not classified", p.tcp6("2001:db8::1", "2001:db8::2", 1, 2), "pass",
             in_port=WAN),
    ], seeds=seeds)  # fmt: skip


def test_first_match_and_counters_without_state(objects: dict[str, bytes]) -> None:
    save = """*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j DROP
-A FORWARD -s 10.1.0.0/16 -j ACCEPT
-A FORWARD -p tcp -m multiport --dports 20:30 -j REJECT
-A FORWARD ! -d 192.0.2.0/24 -p udp -j DROP
COMMIT
"""
    seeds, pos = compiled(save)
    run_cases(objects["acl"], [
        Case("rule 0 before rule 1", tcp("10.1.2.3", S, 1, 22, SY), "drop",
             maps={"rules": {pos[0]: {"packets": 1, "bytes": 54}},
                   "config": {0: {"track": 0}}}),
        Case("rule 1", tcp("10.1.2.3", S, 1, 23, SY), "pass",
             maps={"rules": {pos[1]: {"packets": 1}}}),
        Case("rule 2", tcp("11.1.2.3", S, 1, 23, SY), REJECT),
        Case("the policy", tcp("11.1.2.3", S, 1, 31, SY), "pass",
             maps={"rules": {1024: {"packets": 1}}}),
        Case("a negated destination", p.udp4(C, S, 1, 2), "drop"),
        Case("inside the negated prefix", p.udp4(C, "192.0.2.5", 1, 2), "pass"),
    ], seeds=seeds)  # fmt: skip


def test_a_change_takes_effect_in_configs_write(objects: dict[str, bytes]) -> None:
    """Two rules swapped and the default changed, written map by map as
    the controller writes them (okopy.acl.compile.ordered_changes()), in
    libokovm and the kernel: until config's write every packet meets the
    old rules, from it on the new ones."""
    before = """*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -p tcp -m tcp --dport 22 -j DROP
-A FORWARD -s 10.0.0.0/8 -j ACCEPT
-A FORWARD -p udp -j REJECT
COMMIT
"""
    after = """*filter
:FORWARD DROP [0:0]
-A FORWARD -s 10.0.0.0/8 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 22 -j DROP
COMMIT
"""
    ports = {"lan": LAN, "wan": WAN}
    old = compile_rules(*ipt.flatten(ipt.parse_save(before, ports)))
    new = compile_rules(*ipt.flatten(ipt.parse_save(after, ports)), previous=old.maps)
    probes: list[tuple[bytes, int | str, int | str]] = [
        (tcp("10.1.2.3", S, 1, 22, SY), "drop", "pass"),  # the rules swapped
        (tcp("11.1.2.3", S, 1, 23, SY), "pass", "drop"),  # the default
        (p.udp4("11.1.2.3", S, 1, 2), REJECT, "drop"),  # a rule removed
        (p.udp4("10.1.2.3", S, 1, 2), "pass", "pass"),
    ]
    state = {name: {json.dumps(e["key"], sort_keys=True): e for e in es}
             for name, es in old.maps.items()}  # fmt: skip
    ops = ordered_changes(old.maps, new.maps)
    assert ops[-1].map == "config"
    assert all(op.map != "config" for op in ops[:-1])
    for n, op in enumerate(ops):
        entries = state.setdefault(op.map, {})
        k = json.dumps(op.key, sort_keys=True)
        if op.value is None:
            entries.pop(k, None)
        else:
            entries[k] = {"key": op.key, "value": op.value}
        seeds = {name: [(e["key"], e["value"]) for e in es.values()] for name, es in state.items()}
        done = n == len(ops) - 1
        run_cases(objects["acl"], [
            Case(f"{'after' if done else 'before'} the change ({n + 1} of {len(ops)} writes, "
                 f"{op.map})", pkt, new_verdict if done else old_verdict, in_port=LAN)
            for pkt, old_verdict, new_verdict in probes
        ], seeds=seeds)  # fmt: skip


def udp6(chain: tuple[int, ...], dport: int = 53, frag_offset: int = 0) -> bytes:
    """A UDP datagram to 'dport' behind the extension headers 'chain'."""
    src, dst = "2001:db8::1", "2001:db8:1::2"
    seg = p.udp(src, dst, 4000, dport, b"q")
    ext = b"".join(
        ext6_header(k, chain[i + 1] if i + 1 < len(chain) else p.IPPROTO_UDP, frag_offset)
        for i, k in enumerate(chain)
    )
    return p.ethernet(p.ETH_P_IPV6, p.ipv6(src, dst, chain[0] if chain else 17, ext + seg))


def test_acl6_finds_the_upper_layer_header_past_extension_headers(
    objects: dict[str, bytes],
) -> None:
    """As ip6tables: -p and ports past hop-by-hop, destination options,
    authentication and first-fragment headers; a later fragment has no
    ports but its protocol; more than six extension headers, no ports."""
    save = """# Generated by ip6tables-save
*filter
:FORWARD DROP [0:0]
-A FORWARD -p udp -m udp --dport 53 -j ACCEPT
-A FORWARD -p udp -j REJECT
-A FORWARD -p 60 -j ACCEPT
COMMIT
"""
    rules, default = ipt.flatten(ipt.parse_save(save))
    acl = compile_rules(rules, default, family=6)
    seeds = {name: [(e["key"], e["value"]) for e in entries] for name, entries in acl.maps.items()}
    run_cases(objects["acl6"], [
        Case("no extension header", udp6(()), "pass"),
        Case("hop-by-hop", udp6((0,)), "pass"),
        Case("hop-by-hop, authentication, options", udp6((0, 51, 60)), "pass"),
        Case("another port", udp6((0, 60), dport=54), REJECT),
        Case("a first fragment", udp6((44,)), "pass"),
        Case("a later fragment: UDP, no ports", udp6((44,), frag_offset=8), REJECT),
        Case("six options headers", udp6((60,) * 6), "pass"),
        Case("seven: no ports, the seventh's protocol", udp6((60,) * 7), "pass"),
        Case("seven, the last not options", udp6((60,) * 6 + (0,)), "drop"),
        Case("two 600-byte options headers", big_options(2, 53), "pass"),
        Case("two 600-byte options headers, another port", big_options(2, 54), REJECT),
        Case("six 600-byte options headers", big_options(6, 54), REJECT),
    ], seeds=seeds)  # fmt: skip


def big_options(n: int, dport: int) -> bytes:
    """A UDP datagram to 'dport' behind 'n' destination options headers of
    600 bytes each (PadN options fill each)."""
    src, dst = "2001:db8::1", "2001:db8:1::2"
    pad = b"".join(bytes([1, k]) + bytes(k) for k in (255, 255, 82))
    ext = b"".join(bytes([60 if i + 1 < n else p.IPPROTO_UDP, 74]) + pad for i in range(n))
    return p.ethernet(p.ETH_P_IPV6, p.ipv6(src, dst, 60, ext + p.udp(src, dst, 4000, dport, b"q")))


def test_acl6_relates_an_error_past_both_its_and_the_quoted_extension_headers(
    objects: dict[str, bytes],
) -> None:
    """An ICMPv6 error behind extension headers of its own, about a UDP
    datagram that had some: RELATED, as conntrack finds it past both."""
    save = """# Generated by ip6tables-save
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan -p udp -j ACCEPT
COMMIT
"""
    rules, default = ipt.flatten(ipt.parse_save(save, {"lan": LAN, "wan": WAN}))
    acl = compile_rules(rules, default, family=6)
    seeds = {name: [(e["key"], e["value"]) for e in entries] for name, entries in acl.maps.items()}
    src, dst = "2001:db8::1", "2001:db8:1::2"

    def error(ext: tuple[int, ...], about: bytes) -> bytes:
        msg = struct.pack("!BBH", 1, 4, 0) + b"\0" * 4 + about[14:]
        msg = msg[:2] + struct.pack("!H", p.checksum(
            p.pseudo_header(dst, src, 58, len(msg)) + msg)) + msg[4:]  # fmt: skip
        head = b"".join(
            ext6_header(k, ext[i + 1] if i + 1 < len(ext) else 58) for i, k in enumerate(ext)
        )
        return p.ethernet(p.ETH_P_IPV6, p.ipv6(dst, src, ext[0] if ext else 58, head + msg))

    sent = udp6((0, 60))
    other = udp6((0, 60), dport=54)
    run_cases(objects["acl6"], [
        Case("the datagram, behind two headers", sent, "pass", in_port=LAN),
        Case("an error about it, with none", error((), sent), "pass", in_port=WAN),
        Case("an error about it, with two", error((0, 60), sent), "pass", in_port=WAN),
        Case("an error about it, with six", error((60,) * 6, sent), "pass", in_port=WAN),
        Case("an error about another datagram", error((0,), other), "drop", in_port=WAN),
    ], seeds=seeds)  # fmt: skip


def test_an_acl_whose_maps_are_not_written_aborts(objects: dict[str, bytes]) -> None:
    run_cases(objects["acl"], [Case("no tries yet", p.udp4(C, S, 1, 2), "aborted")])
    run_cases(
        objects["acl6"],
        [
            Case("no tries yet", p.udp6("2001:db8::1", "2001:db8::2", 1, 2), "aborted"),
            Case("IPv4 is not acl6's", p.udp4(C, S, 1, 2), "pass"),
        ],
    )
    with pytest.raises(CaseFailure):
        run_cases(objects["acl"], [Case("the oracle can fail", p.udp4(C, S, 1, 2), "pass")])


@pytest.mark.parametrize("name", ["acl", "acl6"])
@pytest.mark.parametrize("rules", [4096, 16384])
def test_the_kernel_admits_large_rule_sets(
    tmp_path: Path, kernel_bpf: None, rules: int, name: str
) -> None:
    obj = compile_program(
        ROOT / f"bpf/{name}.c", tmp_path / f"{name}.o", defines=[f"ACL_MAX_RULES={rules}"]
    ).read_bytes()
    with KernelProgram(obj) as k:
        assert k.maps["rules"].value_size == 32
    prog = vm.Namespace(name).load(obj)
    assert prog.info.kernel_verified


def test_imported_policy_passes_check_config(tmp_path: Path, kernel_bpf: None) -> None:
    out = tmp_path / "policy.yaml"
    result = from_iptables(
        (ROOT / "tests/rulesets/overlap.save").read_text(),
        PolicyOptions(source=str(ROOT / "bpf/acl.c")),
        ports={"fa": 1, "fb": 2},
    )
    out.write_text(result.text)
    checked = check_policy(load_policy(out), verify=True)
    sw = checked.switches["s1"]
    assert len(sw.seeds) == result.acl.entry_count()
    assert checked.programs["acl"].prog_id == 1
