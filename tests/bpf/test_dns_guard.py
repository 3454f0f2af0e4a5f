"""dns_guard.c: large DNS responses nobody asked for are dropped."""

from __future__ import annotations

import json

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
CLIENT, VICTIM = "10.0.0.1", "10.0.0.66"
RESOLVER, OTHER = "192.0.2.53", "198.51.100.53"
SEEDS = {"config": {0: {"max_unsolicited": 600, "window_ns": 100 * MS}}}


def pair(client: str, server: str) -> str:
    return json.dumps({"client": client, "server": server})


def query(client: str = CLIENT, server: str = RESOLVER, ident: int = 7) -> bytes:
    return p.udp4(client, server, 40000, 53, p.dns(ident))


def response(server: str = RESOLVER, client: str = CLIENT, size: int = 1200,
             ident: int = 7) -> bytes:  # fmt: skip
    """A response whose UDP datagram is about 'size' bytes."""
    msg = p.dns(ident, response=True)
    msg = p.dns(ident, response=True, answer=bytes(max(0, size - 8 - len(msg))))
    return p.udp4(server, client, 53, 40000, msg)


def test_solicited_and_unsolicited(objects: dict[str, bytes]) -> None:
    big = response()
    assert len(big) - 14 - 20 == 1200
    run_cases(objects["dns_guard"], [
        Case("query is recorded", query(), "pass", MS,
             maps={"queries": {pair(CLIENT, RESOLVER): {"last_ns": MS,
                                                        "queries": 1}}}),
        Case("large solicited response passes", big, "pass", 5 * MS),
        Case("large response from a server not asked is dropped",
             response(server=OTHER), "drop", 6 * MS,
             maps={"victims": {CLIENT: {"dropped": 1, "bytes": 1200}}}),
        Case("large response to a victim that never asked is dropped",
             response(client=VICTIM), "drop", 7 * MS,
             maps={"victims": {VICTIM: {"dropped": 1}}}),
        Case("again", response(client=VICTIM, size=700), "drop", 8 * MS,
             maps={"victims": {VICTIM: {"dropped": 2, "bytes": 1900}}}),
        Case("small unsolicited response passes", response(client=VICTIM, size=600),
             "pass", 9 * MS, maps={"victims": {VICTIM: {"dropped": 2}}}),
        Case("a second query refreshes the record", query(ident=8), "pass",
             50 * MS, maps={"queries": {pair(CLIENT, RESOLVER): {"last_ns": 50 * MS,
                                                                 "queries": 2}}}),
        Case("response within the window of the latest query passes", big,
             "pass", 140 * MS),
        Case("response after the window is dropped", big, "drop", 151 * MS),
    ], seeds=SEEDS)  # fmt: skip


def test_what_counts_as_a_query(objects: dict[str, bytes]) -> None:
    resp_to_53 = p.udp4(RESOLVER, CLIENT, 40000, 53, p.dns(1, response=True))
    run_cases(objects["dns_guard"], [
        Case("a response sent to port 53 is no query", resp_to_53, "pass", MS,
             maps={"queries": {pair(RESOLVER, CLIENT): None}}),
        Case("a datagram to 53 too short for DNS is no query",
             p.udp4(CLIENT, RESOLVER, 40000, 53, b"abc"), "pass", None,
             maps={"queries": {pair(CLIENT, RESOLVER): None}}),
        Case("so the large response is dropped", response(), "drop"),
        Case("other UDP, however large, passes",
             p.udp4(RESOLVER, CLIENT, 54, 40000, bytes(1400)), "pass"),
        Case("TCP from port 53 passes", p.tcp4(RESOLVER, CLIENT, 53, 40000,
                                               p.TCP_ACK, payload=bytes(1400)),
             "pass"),
        Case("default window: a query", query(), "pass", 2 * MS),
        Case("its response passes", response(), "pass", 3 * MS),
    ], seeds={"config": {0: {"max_unsolicited": 600}}})  # fmt: skip
