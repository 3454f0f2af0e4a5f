"""Parsers of tool output used by the demo and the tests."""

from __future__ import annotations

import pytest

from okopy.lab.hosts import parse_ping
from okopy.ovs.instance import flow_packets

PING = """PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.
64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.645 ms

--- 10.0.0.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 401ms
rtt min/avg/max/mdev = 0.457/0.551/0.645/0.094 ms
"""


def test_parse_ping() -> None:
    r = parse_ping(PING)
    assert (r.sent, r.received, r.rtt_avg_ms) == (3, 2, 0.551)
    assert r.loss == pytest.approx(1 / 3)


def test_parse_ping_all_lost() -> None:
    out = "3 packets transmitted, 0 received, 100% packet loss, time 2050ms\n"
    r = parse_ping(out)
    assert (r.received, r.rtt_avg_ms, r.loss) == (0, None, 1.0)


def test_parse_ping_garbage() -> None:
    with pytest.raises(ValueError, match="no ping summary"):
        parse_ping("connect: Network is unreachable\n")


def test_flow_packets() -> None:
    dump = (
        " cookie=0x0, duration=1.2s, table=0, n_packets=6, n_bytes=532, "
        "priority=10,in_port=1 actions=output:2\n"
        " cookie=0x0, duration=1.2s, table=0, n_packets=0, n_bytes=0, "
        "priority=0 actions=drop\n"
    )
    assert flow_packets(dump) == {"priority=10,in_port=1": 6, "priority=0": 0}
