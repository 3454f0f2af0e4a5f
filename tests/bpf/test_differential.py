"""Each filter gives the same verdicts and final maps in the VM and the kernel."""

from __future__ import annotations

import ipaddress
import platform
import struct
import zlib

import pytest

from okopy.testing import differential
from okopy.traffic import packets

N_PACKETS = 3000
MS = 1_000_000


def v4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def v6(addr: str) -> bytes:
    return ipaddress.IPv6Address(addr).packed


STATS0 = bytes(16)


def policy_key(src: int, dst: int, dport: int, proto: int) -> bytes:
    """struct idp_policy_key of identity_policy.c."""
    return struct.pack("<II", src, dst) + struct.pack(">H", dport) + bytes([proto, 0])


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
    # The differential runs present in_port 1 (see differential.py): with
    # it inside, handshakes open connections and stray segments are dropped.
    "tcp_firewall": {
        "config": [(bytes(4), struct.pack("<QQQII", 100 * MS, 500 * MS, 50 * MS,
                                          0, 0))],
        "inside_ports": [(struct.pack("<I", 1), struct.pack("<I", 1))],
    },
    "syn_guard": {"config": [(bytes(4), struct.pack("<IIQ", 3, 0, 100 * MS))]},
    "heavy_hitters": {"config": [(bytes(4), struct.pack("<QII", 100 * MS, 5, 8))]},
    "dns_guard": {"config": [(bytes(4), struct.pack("<IIQ", 300, 0, 50 * MS))]},
    # SSH protected behind knocks on 80, 443, 8080: ports the mix uses often.
    "port_knock": {
        "config": [(bytes(4), struct.pack("<QQ", 200 * MS, 100 * MS)
                    + struct.pack(">4H", 22, 80, 443, 8080) + bytes(16))]
    },
    "identity_policy": {
        "identities": [
            (struct.pack("<I", 22) + v4("10.0.0.0"), struct.pack("<I", 100)),
            (struct.pack("<I", 16) + v4("10.1.0.0"), struct.pack("<I", 200)),
            (struct.pack("<I", 32) + v4("192.0.2.10"), struct.pack("<I", 300)),
        ],
        "policy": [
            (policy_key(100, 200, 80, 6), struct.pack("<IIQ", 1, 0, 0)),
            (policy_key(100, 200, 443, 6), struct.pack("<IIQ", 0, 0, 0)),
            (policy_key(100, 300, 0, 17), struct.pack("<IIQ", 1, 0, 0)),
            (policy_key(0, 200, 0, 1), struct.pack("<IIQ", 1, 0, 0)),
        ],
        "enforced": [(struct.pack("<I", 200), struct.pack("<I", 1)),
                     (struct.pack("<I", 300), struct.pack("<I", 1))],
    },
    # The mix's plain SYNs (TTL 64, window 65535, no options) are dropped.
    "p0f": {
        "signatures": [(struct.pack("<BBHHBB", 64, 0, 0, 65535, 0, 0) + bytes(10),
                        b"bare".ljust(24, b"\0") + struct.pack("<IIQ", 1, 0, 0))]
    },
}  # fmt: skip

PROGRAMS = [
    "blocklist", "ratelimit", "prefix_blocklist", "typed_maps", "tcp_firewall",
    "syn_guard", "heavy_hitters", "dns_guard", "port_knock", "identity_policy",
    "p0f", "dapper",
]  # fmt: skip
# Filters whose drop paths the random mix must reach.
DROPPING = [name for name in PROGRAMS if name not in ("typed_maps", "dapper")]
# DNS responses are a small share of the mix.
MIN_DROPS = {"dns_guard": 25}
# The kernel reloads the program at each clock step (the clock is pinned
# as a constant); p0f takes 0.2 s to verify, so its clock moves less often.
PACKETS_PER_TICK = {"p0f": 500}


def clocks_for(name: str) -> list[int]:
    """From 1 ms, 10 ms more every 20 packets (2 kpps) by default, staying
    below 2^31 ns, the largest constant fix_helpers() can pin."""
    every = PACKETS_PER_TICK.get(name, 20)
    return [MS + (i // every) * 10 * MS * every // 20 for i in range(N_PACKETS)]


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "interp"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_vm_matches_kernel(objects: dict[str, bytes], name: str, jit: bool) -> None:
    """Both of the VM's engines for verified programs: native code (where
    libokovm has a JIT) and the interpreter."""
    pkts = packets.random_packets(
        seed=zlib.crc32(name.encode()) & 0xFFFF, count=N_PACKETS, extras=True
    )
    report = differential.run(
        objects[name], pkts, clock_ns=clocks_for(name), seeds=SEEDS.get(name), jit=jit
    )
    if platform.machine() == "x86_64":
        assert report.jit == jit, "the JIT was expected to compile it" if jit else "NO_JIT ignored"
    assert report.ok, report.summary()
    assert report.maps_compared, report.summary()


@pytest.mark.parametrize("name", DROPPING)
def test_filters_do_something(objects: dict[str, bytes], name: str) -> None:
    """The seeds and traffic above exercise the drop paths, not only pass."""
    pkts = packets.random_packets(seed=7, count=N_PACKETS, extras=True)
    report = differential.run(objects[name], pkts, clock_ns=clocks_for(name), seeds=SEEDS[name])
    assert report.verdicts.get(1, 0) > MIN_DROPS.get(name, 50), report.verdicts
    assert report.verdicts.get(2, 0) > 50, report.verdicts
