"""Each filter gives the same verdicts and final maps in the VM and the kernel."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from okopy import differential, packets

N_PACKETS = 3000


def v4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def v6(addr: str) -> bytes:
    return ipaddress.IPv6Address(addr).packed


STATS0 = bytes(16)

SEEDS: dict[str, dict[str, list[tuple[bytes, bytes]]]] = {
    "blocklist": {
        "blocked_v4": [(v4("10.1.0.2"), STATS0), (v4("198.51.100.7"), STATS0)],
        "blocked_v6": [(v6("2001:db8:ff::1"), STATS0)],
    },
    "ratelimit": {"config": [(bytes(4), struct.pack("<II", 10, 3))]},
    "prefix_blocklist": {
        "prefixes": [
            (struct.pack("<I", 24) + v4("10.0.1.0"), struct.pack("<IIQ", 1, 0, 0)),
            (struct.pack("<I", 32) + v4("10.0.1.4"), struct.pack("<IIQ", 0, 0, 0)),
            (struct.pack("<I", 23) + v4("10.0.2.0"), struct.pack("<IIQ", 1, 0, 0)),
        ]
    },
}

PROGRAMS = ["blocklist", "ratelimit", "prefix_blocklist", "typed_maps"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_vm_matches_kernel(objects: dict[str, bytes], name: str) -> None:
    pkts = packets.random_packets(seed=hash(name) & 0xFFFF, count=N_PACKETS)
    # Time advances 10 ms every 20 packets (2 kpps overall) from 1 ms, staying
    # below 2^31 ns, the largest constant fix_helpers() can pin.
    clocks = [1_000_000 + (i // 20) * 10_000_000 for i in range(N_PACKETS)]
    report = differential.run(
        objects[name], pkts, clock_ns=clocks, seeds=SEEDS.get(name)
    )
    assert report.ok, report.summary()
    assert report.maps_compared, report.summary()


def test_filters_do_something(objects: dict[str, bytes]) -> None:
    """The seeds and traffic above exercise the drop paths, not only pass."""
    pkts = packets.random_packets(seed=7, count=N_PACKETS)
    clocks = [1_000_000 + (i // 20) * 10_000_000 for i in range(N_PACKETS)]
    for name in ("blocklist", "ratelimit", "prefix_blocklist"):
        report = differential.run(
            objects[name], pkts, clock_ns=clocks, seeds=SEEDS[name]
        )
        assert report.verdicts.get(1, 0) > 50, (name, report.verdicts)
        assert report.verdicts.get(2, 0) > 50, (name, report.verdicts)
