"""tcp_firewall.c: only connections opened from the inside get through."""

from __future__ import annotations

import json
from typing import Any

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

INSIDE, OUTSIDE = 1, 2
CLIENT, SERVER = "10.0.0.1", "192.0.2.10"
CPORT, SPORT = 40000, 80
MS = 1_000_000

SEEDS: dict[str, Any] = {
    "config": {
        0: {
            "syn_timeout_ns": 100 * MS,
            "idle_timeout_ns": 500 * MS,
            "close_timeout_ns": 50 * MS,
        }
    },
    "inside_ports": {INSIDE: 1},
}


def conn(client: str = CLIENT, server: str = SERVER, cport: int = CPORT,
         sport: int = SPORT) -> str:  # fmt: skip
    """The conns key (JSON text) of a connection; 'a' is the lower address."""
    a, b = sorted([(client, cport), (server, sport)],
                  key=lambda e: (tuple(map(int, e[0].split("."))), e[1]))  # fmt: skip
    return json.dumps({"addr_a": a[0], "addr_b": b[0], "port_a": a[1], "port_b": b[1], "proto": 6})


def out(flags: int, **kw: Any) -> bytes:
    """Client to server."""
    return p.tcp4(CLIENT, SERVER, CPORT, SPORT, flags, **kw)


def back(flags: int, **kw: Any) -> bytes:
    """Server to client."""
    return p.tcp4(SERVER, CLIENT, SPORT, CPORT, flags, **kw)


SYN, ACK, FIN, RST = p.TCP_SYN, p.TCP_ACK, p.TCP_FIN, p.TCP_RST


def handshake(t0: int = MS) -> list[Case]:
    return [
        Case("SYN from the inside passes", out(SYN), "pass", t0, INSIDE,
             maps={"conns": {conn(): {"state": "FW_SYN_SENT", "client": 0}}}),
        Case("SYN-ACK from the server passes", back(SYN | ACK), "pass", None,
             OUTSIDE, maps={"conns": {conn(): {"state": "FW_SYN_ACKED"}}}),
        Case("client's ACK establishes", out(ACK), "pass", None, INSIDE,
             maps={"conns": {conn(): {"state": "FW_ESTABLISHED", "packets": 3}}}),
    ]  # fmt: skip


def test_handshake_from_inside_then_data(objects: dict[str, bytes]) -> None:
    run_cases(objects["tcp_firewall"], [
        *handshake(),
        Case("data from the server passes", back(ACK | p.TCP_PSH, payload=b"x" * 50),
             "pass", 2 * MS, OUTSIDE),
        Case("data from the client passes", out(ACK, payload=b"y"), "pass",
             None, INSIDE),
        Case("SYN inside an established connection is dropped", back(SYN),
             "drop", None, OUTSIDE),
        Case("client FIN starts closing", out(FIN | ACK), "pass", None, INSIDE,
             maps={"conns": {conn(): {"state": "FW_CLOSING", "fins": 1}}}),
        Case("server FIN passes", back(FIN | ACK), "pass", None, OUTSIDE,
             maps={"conns": {conn(): {"fins": 3}}}),
        Case("last ACK passes", out(ACK), "pass", 3 * MS, INSIDE),
        Case("after the close timeout the connection is gone", back(ACK),
             "drop", 60 * MS, OUTSIDE, maps={"conns": {conn(): None}}),
    ], seeds=SEEDS)  # fmt: skip


def test_outside_cannot_open(objects: dict[str, bytes]) -> None:
    run_cases(objects["tcp_firewall"], [
        Case("SYN from outside is dropped", back(SYN), "drop", MS, OUTSIDE,
             maps={"conns": {conn(): None}}),
        Case("stray ACK from outside is dropped", back(ACK), "drop", None, OUTSIDE),
        Case("stray ACK from inside is dropped", out(ACK), "drop", None, INSIDE),
        Case("SYN-ACK before any SYN is dropped", back(SYN | ACK), "drop", None,
             OUTSIDE),
        Case("a SYN from outside sent as if from inside addresses is dropped",
             out(SYN), "drop", None, OUTSIDE, maps={"conns": {conn(): None}}),
        Case("a SYN+FIN from inside does not open", out(SYN | FIN), "drop", None,
             INSIDE, maps={"conns": {conn(): None}}),
    ], seeds=SEEDS)  # fmt: skip


def test_handshake_rules(objects: dict[str, bytes]) -> None:
    run_cases(objects["tcp_firewall"], [
        Case("SYN from the inside passes", out(SYN), "pass", MS, INSIDE),
        Case("SYN retransmitted passes", out(SYN), "pass", None, INSIDE),
        Case("ACK before the SYN-ACK is dropped", out(ACK), "drop", None, INSIDE,
             maps={"conns": {conn(): {"state": "FW_SYN_SENT"}}}),
        Case("a SYN from the server side is dropped", back(SYN), "drop", None,
             OUTSIDE),
        Case("SYN-ACK passes", back(SYN | ACK), "pass", None, OUTSIDE),
        Case("SYN-ACK retransmitted passes", back(SYN | ACK), "pass", None,
             OUTSIDE),
        Case("server data before the handshake completes is dropped",
             back(ACK, payload=b"z"), "drop", None, OUTSIDE),
        Case("handshake not completed in time: ACK dropped", out(ACK), "drop",
             200 * MS, INSIDE, maps={"conns": {conn(): None}}),
    ], seeds=SEEDS)  # fmt: skip


def test_rst_and_idle_timeout(objects: dict[str, bytes]) -> None:
    other = conn(cport=40001)
    run_cases(objects["tcp_firewall"], [
        *handshake(),
        Case("RST from the server passes and ends the connection", back(RST),
             "pass", None, OUTSIDE, maps={"conns": {conn(): None}}),
        Case("then its packets are dropped", back(ACK), "drop", None, OUTSIDE),
        Case("second connection opens", p.tcp4(CLIENT, SERVER, 40001, SPORT, SYN),
             "pass", 10 * MS, INSIDE, maps={"conns": {other: {"state": "FW_SYN_SENT"}}}),
        Case("RST for an unknown connection is dropped",
             p.tcp4(SERVER, CLIENT, SPORT, 40002, RST), "drop", None, OUTSIDE),
        Case("SYN-ACK", p.tcp4(SERVER, CLIENT, SPORT, 40001, SYN | ACK), "pass",
             None, OUTSIDE),
        Case("ACK", p.tcp4(CLIENT, SERVER, 40001, SPORT, ACK), "pass", None, INSIDE,
             maps={"conns": {other: {"state": "FW_ESTABLISHED"}}}),
        Case("idle within the timeout still passes",
             p.tcp4(SERVER, CLIENT, SPORT, 40001, ACK), "pass", 400 * MS, OUTSIDE),
        Case("idle beyond the timeout is dropped",
             p.tcp4(SERVER, CLIENT, SPORT, 40001, ACK), "drop", 1000 * MS, OUTSIDE,
             maps={"conns": {other: None}}),
    ], seeds=SEEDS)  # fmt: skip


def test_other_traffic(objects: dict[str, bytes]) -> None:
    syn = out(SYN)
    truncated_tcp = syn[: 14 + 20 + 10]
    fragment = p.ethernet(p.ETH_P_IP, p.ipv4(SERVER, CLIENT, p.IPPROTO_TCP,
                                             b"\0" * 24, frag=10))  # fmt: skip
    cases = [
        Case("UDP passes", p.udp4(SERVER, CLIENT, 53, 5353, b"x"), "pass", MS,
             OUTSIDE),
        Case("ICMP passes", p.icmp4(SERVER, CLIENT), "pass", None, OUTSIDE),
        Case("ARP passes", p.ethernet(p.ETH_P_ARP, bytes(28)), "pass", None,
             OUTSIDE),
        Case("IPv6 TCP is not tracked and passes",
             p.tcp6("2001:db8::1", "2001:db8::2", 1, 2), "pass", None, OUTSIDE),
        Case("truncated TCP is dropped", truncated_tcp, "drop", None, INSIDE),
        Case("a later fragment is dropped", fragment, "drop", None, OUTSIDE),
    ]  # fmt: skip
    run_cases(objects["tcp_firewall"], cases, seeds=SEEDS)
    strict = {**SEEDS, "config": {0: {"drop_other": 1}}}
    run_cases(objects["tcp_firewall"], [
        Case("with drop_other, UDP is dropped", p.udp4(SERVER, CLIENT, 53, 5353),
             "drop", MS, OUTSIDE),
        Case("with drop_other, IPv6 is dropped",
             p.udp6("2001:db8::1", "2001:db8::2", 1, 2), "drop", None, OUTSIDE),
        Case("with drop_other, ARP still passes", p.ethernet(p.ETH_P_ARP, bytes(28)),
             "pass", None, OUTSIDE),
        Case("with drop_other, the handshake still works", syn, "pass", None,
             INSIDE),
    ], seeds=strict)  # fmt: skip
