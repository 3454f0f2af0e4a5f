"""heavy_hitters.c: count-min sketch per source, talkers table, drop option."""

from __future__ import annotations

import ipaddress
from typing import Any

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
A, B = "10.0.0.1", "10.0.0.2"
DST = "192.0.2.10"

# Mirrors row_hash() in heavy_hitters.c (HH_DEPTH 4, HH_WIDTH_BITS 11).
WIDTH_BITS = 11
MUL = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
       0xD6E8FEB86659FD93)  # fmt: skip
ADD = (0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD,
       0x4CF5AD432745937F)  # fmt: skip


def cells(addr: str, epoch: int, count: int) -> dict[int, Any]:
    """The sketch cells of 'addr' (one per row), as they should read."""
    x = int(ipaddress.IPv4Address(addr))
    out = {}
    for row in range(4):
        col = ((MUL[row] * x + ADD[row]) % (1 << 64)) >> (64 - WIDTH_BITS)
        out[row * (1 << WIDTH_BITS) + col] = {"epoch": epoch, "count": count}
    return out


def pkt(src: str) -> bytes:
    return p.udp4(src, DST, 1234, 80, b"x" * 20)


def test_counts_reports_and_drops(objects: dict[str, bytes]) -> None:
    seeds = {"config": {0: {"window_ns": 100 * MS, "report_threshold": 3,
                            "drop_threshold": 5}}}  # fmt: skip
    run_cases(objects["heavy_hitters"], [
        Case("A 1", pkt(A), "pass", MS, maps={"sketch": cells(A, 0, 1),
                                              "talkers": {A: None}}),
        Case("B 1", pkt(B), "pass", 2 * MS, maps={"sketch": cells(B, 0, 1)}),
        Case("A 2", pkt(A), "pass", 3 * MS, maps={"talkers": {A: None}}),
        Case("A 3 reaches the report threshold", pkt(A), "pass", 4 * MS,
             maps={"sketch": cells(A, 0, 3),
                   "talkers": {A: {"estimate": 3, "epoch": 0,
                                   "last_seen_ns": 4 * MS}}}),
        Case("A 4", p.tcp4(A, DST, 1, 2, p.TCP_ACK), "pass", 5 * MS),
        Case("A 5 is at the drop threshold", pkt(A), "pass", 6 * MS,
             maps={"talkers": {A: {"estimate": 5}}}),
        Case("A 6 is over it", pkt(A), "drop", 7 * MS,
             maps={"sketch": cells(A, 0, 6), "talkers": {A: {"estimate": 6}}}),
        Case("B is unaffected", pkt(B), "pass", 8 * MS,
             maps={"sketch": cells(B, 0, 2), "talkers": {B: None}}),
        Case("a new window starts A from zero", pkt(A), "pass", 150 * MS,
             maps={"sketch": cells(A, 1, 1),
                   "talkers": {A: {"estimate": 6, "epoch": 0}}}),
        Case("non-IP passes uncounted", p.ethernet(p.ETH_P_ARP, bytes(28)),
             "pass"),
        Case("IPv6 passes uncounted", p.udp6("2001:db8::1", "2001:db8::2", 1, 2),
             "pass"),
    ], seeds=seeds)  # fmt: skip


def test_monitor_only_by_default(objects: dict[str, bytes]) -> None:
    seeds = {"config": {0: {"window_ns": 100 * MS, "report_threshold": 2}}}
    cases = [Case(f"A {i + 1} passes", pkt(A), "pass", (i + 1) * MS)
             for i in range(10)]  # fmt: skip
    cases.append(
        Case("the sketch counted all", pkt(B), "pass", 20 * MS,
             maps={"sketch": cells(A, 0, 10), "talkers": {A: {"estimate": 10}}})
    )  # fmt: skip
    run_cases(objects["heavy_hitters"], cases, seeds=seeds)
