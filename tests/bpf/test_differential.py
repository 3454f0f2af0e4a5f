"""Each filter gives the same verdicts and final maps in the VM and the kernel."""

from __future__ import annotations

import platform
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from okopy.acl import iptables
from okopy.acl.compile import compile_rules
from okopy.bpf.btf import Btf, map_definitions
from okopy.bpf.elf import sections
from okopy.policy import file as policy
from okopy.policy.desired import BuiltProgram, desired_switch
from okopy.testing import differential
from okopy.traffic import packets

ROOT = Path(__file__).resolve().parent.parent.parent

N_PACKETS = 3000
MS = 1_000_000


# Map seeds as a policy file gives them: typed JSON, converted to bytes by
# the same code as the controller's (the policy schema, then the object's
# BTF), so that a defect in that conversion changes what the filters see.
SEEDS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "blocklist": {
        "blocked_v4": [{"key": "10.1.0.2", "value": {}}, {"key": "198.51.100.7", "value": {}}],
        "blocked_v6": [{"key": "2001:db8:ff::1", "value": {}}],
    },
    "ratelimit": {"config": [{"key": 0, "value": {"rate": 10, "burst": 3}}]},
    "prefix_blocklist": {
        "prefixes": [
            {"key": {"prefixlen": 24, "addr": "10.0.1.0"}, "value": {"block": 1}},
            {"key": {"prefixlen": 32, "addr": "10.0.1.4"}, "value": {"block": 0}},
            {"key": {"prefixlen": 23, "addr": "10.0.2.0"}, "value": {"block": 1}},
        ]
    },
    # The differential runs present in_port 1 (see differential.py): with
    # it inside, handshakes open connections and stray segments are dropped.
    "tcp_firewall": {
        "config": [{"key": 0, "value": {"syn_timeout_ns": 100 * MS, "idle_timeout_ns": 500 * MS,
                                        "close_timeout_ns": 50 * MS, "drop_other": 0}}],
        "inside_ports": [{"key": 1, "value": 1}],
    },
    "syn_guard": {"config": [{"key": 0, "value": {"budget": 3, "window_ns": 100 * MS}}]},
    "heavy_hitters": {"config": [{"key": 0, "value": {"window_ns": 100 * MS, "report_threshold": 5,
                                                      "drop_threshold": 8}}]},
    "dns_guard": {"config": [{"key": 0, "value": {"max_unsolicited": 300, "window_ns": 50 * MS}}]},
    # SSH protected behind knocks on 80, 443, 8080: ports the mix uses often.
    "port_knock": {
        "config": [{"key": 0, "value": {"open_ns": 200 * MS, "step_timeout_ns": 100 * MS,
                                        "protected_port": 22, "sequence": [80, 443, 8080]}}]
    },
    "identity_policy": {
        "identities": [
            {"key": {"prefixlen": 22, "addr": "10.0.0.0"}, "value": 100},
            {"key": {"prefixlen": 16, "addr": "10.1.0.0"}, "value": 200},
            {"key": {"prefixlen": 32, "addr": "192.0.2.10"}, "value": 300},
        ],
        "policy": [
            {"key": {"src_identity": 100, "dst_identity": 200, "dport": 80, "proto": 6}, "value": {"allow": 1}},
            {"key": {"src_identity": 100, "dst_identity": 200, "dport": 443, "proto": 6}, "value": {"allow": 0}},
            {"key": {"src_identity": 100, "dst_identity": 300, "dport": 0, "proto": 17}, "value": {"allow": 1}},
            {"key": {"src_identity": 0, "dst_identity": 200, "dport": 0, "proto": 1}, "value": {"allow": 1}},
        ],
        "enforced": [{"key": 200, "value": 1}, {"key": 300, "value": 1}],
    },
    # The mix's plain SYNs (TTL 64, window 65535, no options) are dropped.
    "p0f": {
        "signatures": [{"key": {"ittl": 64, "window": 65535}, "value": {"label": "bare", "drop": 1}}]
    },
}  # fmt: skip


def acl_seeds() -> dict[str, list[dict[str, Any]]]:
    """bpf/acl.c holding tests/rulesets/overlap.save, as `okopy import
    iptables` writes it (the mix arrives on in_port 1: interface fa)."""
    save = (ROOT / "tests/rulesets/overlap.save").read_text()
    rules, default = iptables.flatten(iptables.parse_save(save, {"fa": 1, "fb": 2}))
    return compile_rules(rules, default).maps


SEEDS["acl"] = acl_seeds()

# Maps whose seeded entries count the packets they matched: after the run,
# each seeded entry must have matched some, which it only does when its
# bytes are what the filter's C layout means by the JSON.
HIT_COUNTERS = {
    "blocklist": {"blocked_v4": "packets", "blocked_v6": "packets"},
    "prefix_blocklist": {"prefixes": "hits"},
    "identity_policy": {"policy": "packets"},
    "p0f": {"signatures": "hits"},
}


def built_program(name: str, obj: bytes) -> BuiltProgram:
    btf = Btf.parse(sections(obj)[".BTF"].data)
    return BuiltProgram(name, 1, obj, btf, {m.name: m for m in map_definitions(btf)})


def policy_seeds(name: str, obj: bytes) -> dict[str, list[tuple[bytes, bytes]]]:
    """SEEDS[name] as the controller would write them to the switch."""
    text = yaml.safe_dump({
        "version": 1,
        "programs": {name: {"source": f"bpf/{name}.c", "id": 1}},
        "switches": {"s": {"dpid": 1, "programs": [name], "maps": {name: SEEDS[name]}}},
    })  # fmt: skip
    parsed = policy.parse(text, base=ROOT)
    want = desired_switch(parsed, parsed.switches["s"], {name: built_program(name, obj)})
    out: dict[str, list[tuple[bytes, bytes]]] = {}
    for s in want.seeds:
        out.setdefault(s.map, []).append((s.key, s.value))
    return out


PROGRAMS = [
    "blocklist", "ratelimit", "prefix_blocklist", "typed_maps", "tcp_firewall",
    "syn_guard", "heavy_hitters", "dns_guard", "port_knock", "identity_policy",
    "p0f", "dapper", "acl",
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
    seeds = policy_seeds(name, objects[name]) if name in SEEDS else None
    report = differential.run(objects[name], pkts, clock_ns=clocks_for(name), seeds=seeds, jit=jit)
    if platform.machine() == "x86_64":
        assert report.jit == jit, "the JIT was expected to compile it" if jit else "NO_JIT ignored"
    assert report.ok, report.summary()
    assert report.maps_compared, report.summary()


@pytest.mark.parametrize("name", DROPPING)
def test_filters_do_something(objects: dict[str, bytes], name: str) -> None:
    """The seeds and traffic above exercise the drop paths, not only pass,
    and every seeded entry that counts its matches matched packets."""
    pkts = packets.random_packets(seed=7, count=N_PACKETS, extras=True)
    seeds = policy_seeds(name, objects[name])
    report = differential.run(objects[name], pkts, clock_ns=clocks_for(name), seeds=seeds)
    assert report.verdicts.get(1, 0) > MIN_DROPS.get(name, 50), report.verdicts
    assert report.verdicts.get(2, 0) > 50, report.verdicts
    prog = built_program(name, objects[name])
    for map_name, counter in HIT_COUNTERS.get(name, {}).items():
        for (key, _), seed in zip(seeds[map_name], SEEDS[name][map_name], strict=True):
            value = report.vm_maps[map_name].get(key)
            assert value is not None, f"{map_name}: seeded entry {seed['key']} is gone"
            got = prog.decode_entry(map_name, key, value)["value"][counter]
            assert got > 0, f"{map_name}: seeded entry {seed['key']} matched no packet"
