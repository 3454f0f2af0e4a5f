"""`okopy bench acl`'s rule sets and probes, without a kernel: the rules
say the same in every form, and each probe meets the rule it aims at."""

from __future__ import annotations

import struct

import pytest

from okopy.acl import iptables
from okopy.acl.compile import classify, compile_rules
from okopy.acl.rules import VERDICT_DROP, VERDICT_PASS, first_match
from okopy.bench import acl as bench

pytestmark = pytest.mark.unit


def fields(frame: bytes) -> dict[str, int | None]:
    ip = frame[14:]
    ihl = (ip[0] & 0xF) * 4
    proto = ip[9]
    l4 = ip[ihl:]
    sport, dport = struct.unpack("!HH", l4[:4])
    return {
        "in_port": 1,
        "src": int.from_bytes(ip[12:16], "big"),
        "dst": int.from_bytes(ip[16:20], "big"),
        "proto": proto,
        "sport": sport,
        "dport": dport,
        "flags": l4[13] if proto == 6 else None,
    }


def test_rule_sets_are_reproducible_and_do_not_overlap() -> None:
    rules = bench.generate(300)
    assert rules == bench.generate(300)
    assert len({r.dst[0] >> 8 for r in rules}) == 300
    assert {r.proto for r in rules} == {6, 17, None}
    assert {r.accept for r in rules} == {True, False}


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_each_probe_meets_the_rule_it_aims_at(n: int) -> None:
    rules = bench.generate(n)
    acl = compile_rules(bench.acl_rules(rules), VERDICT_DROP, 1024)
    frames, accepted = bench.probes(rules)
    assert len(frames) == bench.PROBES
    verdicts = [classify(acl, fields(f))[0] for f in frames]
    assert verdicts.count(VERDICT_PASS) / len(frames) == accepted
    # The last probes meet no rule.
    assert all(classify(acl, fields(f))[1] is None for f in frames[-bench.DEFAULT_PROBES :])
    # The others meet rules spread over the whole list, accepting and
    # dropping in turn: the same share accepted whatever N.
    found = [classify(acl, fields(f))[1] for f in frames[: -bench.DEFAULT_PROBES]]
    hit = [h for h in found if h is not None]
    assert len(hit) == len(found)
    assert hit == sorted(hit) or n < 64
    if n >= 10:
        assert hit[0] <= n // 10
        assert hit[-1] >= n - 1 - n // 10
        assert accepted == (bench.PROBES - bench.DEFAULT_PROBES) / 2 / bench.PROBES


def test_the_iptables_form_says_what_the_rules_say() -> None:
    rules = [*bench.generate(200), *bench.PING_RULES]
    parsed, default = iptables.flatten(iptables.parse_save(bench.iptables_save(rules)))
    assert default == VERDICT_DROP
    ours = bench.acl_rules(rules)
    frames, _ = bench.probes(rules)
    for f in frames:
        assert (
            first_match(parsed, default, fields(f))[0]
            == first_match(ours, VERDICT_DROP, fields(f))[0]
        )


def test_nftables_forms() -> None:
    rules = bench.generate(3, seed=4)
    linear = bench.nft_linear(rules)
    assert linear.count(" accept\n") + linear.count(" drop\n") == 3
    assert "chain filter_forward" in linear
    assert "policy drop" in linear
    vmap = bench.nft_vmap(rules)
    assert "flags interval" in vmap
    assert vmap.count(" : accept") + vmap.count(" : drop") == 3
    assert "ip daddr . ip saddr . meta l4proto . th sport . th dport vmap @acl" in vmap
