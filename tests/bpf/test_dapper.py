"""dapper.c: handshake and data/ACK RTT, flight size, retransmissions."""

from __future__ import annotations

import json
from typing import Any

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
CLIENT, SERVER = "10.0.0.1", "192.0.2.10"
CISN, SISN = 1000, 5000
SYN, ACK, PSH, FIN = p.TCP_SYN, p.TCP_ACK, p.TCP_PSH, p.TCP_FIN
# The client has the lower address: it is endpoint a, direction 0.
KEY = json.dumps({"addr_a": CLIENT, "addr_b": SERVER, "port_a": 40000, "port_b": 80, "proto": 6})


def c2s(flags: int, seq: int, ack: int = 0, size: int = 0) -> bytes:
    return p.tcp4(CLIENT, SERVER, 40000, 80, flags, seq=seq, ack=ack, payload=bytes(size))


def s2c(flags: int, seq: int, ack: int = 0, size: int = 0) -> bytes:
    return p.tcp4(SERVER, CLIENT, 80, 40000, flags, seq=seq, ack=ack, payload=bytes(size))


def flow(**fields: Any) -> dict[str, dict[str, Any]]:
    return {"flows": {KEY: fields}}


def test_rtt_flight_and_retransmissions(objects: dict[str, bytes]) -> None:
    run_cases(objects["dapper"], [
        Case("SYN", c2s(SYN, CISN), "pass", 1 * MS,
             maps=flow(state="DP_SYN_SEEN", syn_ns=MS, client=0)),
        Case("SYN-ACK: the SYN is acked 2 ms later", s2c(SYN | ACK, SISN, CISN + 1), "pass",
             3 * MS, maps=flow(state="DP_SYNACK_SEEN", synack_ns=3 * MS, dir=[
                 {"snd_una": CISN + 1, "snd_nxt": CISN + 1, "flight": 0,
                  "rtt_ns": 2 * MS, "rtt_samples": 1},
                 {"snd_nxt": SISN + 1, "flight": 1}])),
        Case("ACK completes the handshake: 3 ms", c2s(ACK, CISN + 1, SISN + 1), "pass",
             4 * MS, maps=flow(state="DP_ESTABLISHED", handshake_rtt_ns=3 * MS, dir=[
                 {"flight": 0}, {"rtt_ns": MS, "flight": 0, "snd_una": SISN + 1}])),
        Case("data 1 is timed", c2s(ACK | PSH, CISN + 1, SISN + 1, 100), "pass", 10 * MS,
             maps=flow(dir=[{"snd_nxt": CISN + 101, "flight": 100, "timing": 1,
                             "sample_seq": CISN + 101, "sample_ns": 10 * MS,
                             "bytes": 100}, {}])),
        Case("data 2 adds to the flight", c2s(ACK | PSH, CISN + 101, SISN + 1, 100),
             "pass", 11 * MS, maps=flow(dir=[{"flight": 200, "sample_seq": CISN + 101},
                                             {}])),
        Case("ACK of data 1: a 5 ms sample", s2c(ACK, SISN + 1, CISN + 101), "pass",
             15 * MS, maps=flow(dir=[{"flight": 100, "rtt_ns": 5 * MS, "timing": 0,
                                      "srtt_ns": 2_375_000, "min_rtt_ns": 2 * MS,
                                      "rtt_samples": 2}, {}])),
        Case("data 2 retransmitted", c2s(ACK | PSH, CISN + 101, SISN + 1, 100), "pass",
             16 * MS, maps=flow(dir=[{"retrans": 1, "flight": 100, "timing": 0,
                                      "packets": 5}, {}])),
        Case("data 3 is timed", c2s(ACK | PSH, CISN + 201, SISN + 1, 100), "pass",
             17 * MS, maps=flow(dir=[{"timing": 1, "sample_seq": CISN + 301,
                                      "flight": 200}, {}])),
        Case("ACK of all: 3 ms, nothing in flight", s2c(ACK, SISN + 1, CISN + 301),
             "pass", 20 * MS, maps=flow(dir=[{"rtt_ns": 3 * MS, "srtt_ns": 2_453_125,
                                             "flight": 0, "rtt_samples": 3,
                                             "bytes": 400}, {}])),
        Case("FIN takes a sequence number", c2s(FIN | ACK, CISN + 301, SISN + 1), "pass",
             21 * MS, maps=flow(dir=[{"snd_nxt": CISN + 302, "flight": 1}, {}])),
    ])  # fmt: skip


def test_midstream_and_other_traffic(objects: dict[str, bytes]) -> None:
    run_cases(objects["dapper"], [
        Case("a flow first seen mid-stream", s2c(ACK | PSH, 9000, 7000, 50), "pass", MS,
             maps=flow(state="DP_MIDSTREAM", handshake_rtt_ns=0, dir=[
                 {"packets": 0}, {"snd_una": 9000, "snd_nxt": 9050, "flight": 50}])),
        Case("its ACK gives a sample", c2s(ACK, 7000, 9050), "pass", 2 * MS,
             maps=flow(dir=[{}, {"rtt_ns": MS, "flight": 0}])),
        Case("UDP passes untracked", p.udp4(CLIENT, SERVER, 1, 2), "pass"),
        Case("truncated TCP passes", c2s(ACK, 1)[:40], "pass"),
    ])  # fmt: skip
