"""syn_guard.c: a SYN budget per destination and time window."""

from __future__ import annotations

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
SERVER, OTHER = "192.0.2.10", "192.0.2.11"
SEEDS = {"config": {0: {"budget": 3, "window_ns": 100 * MS}}}


def syn(src: str, dst: str = SERVER, sport: int = 40000) -> bytes:
    return p.tcp4(src, dst, sport, 80, p.TCP_SYN)


def test_budget_per_window(objects: dict[str, bytes]) -> None:
    run_cases(objects["syn_guard"], [
        Case("SYN 1 passes", syn("10.0.0.1"), "pass", MS,
             maps={"dests": {SERVER: {"start_ns": MS, "syns": 1}}}),
        Case("SYN 2 from another source passes", syn("10.0.0.2"), "pass", 2 * MS),
        Case("SYN 3 passes", syn("10.0.0.3"), "pass", 3 * MS,
             maps={"dests": {SERVER: {"syns": 3, "dropped": 0}}}),
        Case("SYN 4 is over budget", syn("10.0.0.4"), "drop", 4 * MS,
             maps={"dests": {SERVER: {"syns": 4, "dropped": 1}}}),
        Case("SYN 5 is over budget", syn("10.0.0.1", sport=40001), "drop", 5 * MS),
        Case("another destination has its own budget", syn("10.0.0.1", OTHER),
             "pass", 6 * MS, maps={"dests": {OTHER: {"syns": 1}}}),
        Case("SYN-ACKs are not counted",
             p.tcp4(SERVER, "10.0.0.1", 80, 40000, p.TCP_SYN | p.TCP_ACK), "pass",
             7 * MS),
        Case("established traffic to the flooded server passes",
             p.tcp4("10.0.0.1", SERVER, 40000, 80, p.TCP_ACK), "pass", 8 * MS),
        Case("UDP to it passes", p.udp4("10.0.0.1", SERVER, 1, 53), "pass", 9 * MS),
        Case("a new window restores the budget", syn("10.0.0.4"), "pass",
             101 * MS, maps={"dests": {SERVER: {"start_ns": 101 * MS, "syns": 1,
                                                 "dropped": 2}}}),
        Case("and counts again", syn("10.0.0.5"), "pass", 102 * MS,
             maps={"dests": {SERVER: {"syns": 2}}}),
    ], seeds=SEEDS)  # fmt: skip


def test_defaults_and_odd_packets(objects: dict[str, bytes]) -> None:
    full = syn("10.0.0.1")
    run_cases(objects["syn_guard"], [
        Case("default budget: a SYN passes", full, "pass", MS,
             maps={"dests": {SERVER: {"syns": 1}}}),
        Case("truncated TCP passes uncounted", full[:40], "pass", None,
             maps={"dests": {SERVER: {"syns": 1}}}),
        Case("IPv6 SYN passes", p.tcp6("2001:db8::1", "2001:db8::2", 1, 80),
             "pass"),
    ])  # fmt: skip
