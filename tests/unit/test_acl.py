"""The ACL compiler and the iptables translation, without a kernel.

The compiled maps are read back by okopy.acl.compile.classify (the
lookups bpf/acl.c makes, done in Python) and compared with the rules
read in order; the flattening of chains is compared with an interpreter
of iptables' own walk (jumps, gotos, returns at run time).  The kernel is
the oracle for both in tests/integration/test_acl_iptables.py.
"""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from okopy.acl import iptables as ipt
from okopy.acl.compile import (
    CompiledAcl,
    MapOp,
    allocate,
    changed_entries,
    classify,
    compile_rules,
    decide,
    decide_all,
    ordered_changes,
    previous_positions,
)
from okopy.acl.policy import CustomVerdict, PolicyOptions, from_iptables
from okopy.acl.rules import (
    FIELD,
    FIELDS,
    VERDICT_DROP,
    VERDICT_PASS,
    VERDICT_REJECT,
    AclError,
    AclRule,
    Match,
    first_match,
)
from okopy.acl.sets import IntSet, block

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent.parent


# -- sets ---------------------------------------------------------------


def test_intset_merges_and_complements() -> None:
    s = IntSet.of(16, [(3, 5), (6, 7), (10, 10), (0, 0)])
    assert s.spans == ((0, 0), (3, 7), (10, 10))
    assert s.complement().spans == ((1, 2), (8, 9), (11, 15))
    assert s.complement().complement() == s
    assert s.intersect(IntSet.of(16, [(5, 11)])).spans == ((5, 7), (10, 10))
    assert IntSet.everything(16).full
    assert IntSet.of(16, []).empty
    assert 4 in s
    assert 8 not in s


@pytest.mark.parametrize("seed", range(20))
def test_prefixes_cover_exactly_with_maximal_blocks(seed: int) -> None:
    rng = random.Random(seed)
    s = IntSet.of(256, [(a, a + rng.randrange(40)) for a in rng.sample(range(256), 6)])
    blocks = s.prefixes(8)
    covered: set[int] = set()
    for value, plen in blocks:
        lo, hi = block(value, plen, 8)
        assert lo == value, "blocks are given by their start"
        assert not covered & set(range(lo, hi + 1)), "blocks overlap"
        covered |= set(range(lo, hi + 1))
    assert covered == set(s)
    # Maximal: a block's parent is never inside the set.
    for value, plen in blocks:
        if plen:
            plo, phi = block(value, plen - 1, 8)
            assert not s.covers(plo, phi)


def test_a_negated_prefix_is_one_trie_entry() -> None:
    rules = [AclRule(Match.of(src=_net("192.168.0.0/16").complement()), VERDICT_DROP)]
    acl = compile_rules(rules, VERDICT_PASS)
    assert len(acl.maps["src"]) == 2  # the root and 192.168.0.0/16
    assert classify(acl, _pkt(src="10.0.0.1"))[0] == VERDICT_DROP
    assert classify(acl, _pkt(src="192.168.3.4"))[0] == VERDICT_PASS


# -- the compiler against first match -----------------------------------


def _net(text: str) -> IntSet:
    return ipt._address(text, 4)


def _ip(text: str) -> int:
    return _net(text).spans[0][0]


def _pkt(**fields: object) -> dict[str, int | None]:
    out: dict[str, int | None] = {
        "in_port": 1,
        "src": 1,
        "dst": 1,
        "proto": 6,
        "sport": 1000,
        "dport": 80,
        "flags": 0x10,
        "state": 1,
    }
    for k, v in fields.items():
        out[k] = _ip(v) if isinstance(v, str) else v  # type: ignore[assignment]
    return out


def _random_set(rng: random.Random, name: str) -> IntSet:
    f = FIELD[name]
    if f.trie_bits:
        plen = rng.randrange(f.trie_bits // 2, f.trie_bits + 1)
        base = rng.getrandbits(f.trie_bits) & ~((1 << (f.trie_bits - plen)) - 1)
        lo, hi = block(base, plen, f.trie_bits)
        s = IntSet.of(
            f.size,
            [(lo, hi)]
            if rng.random() < 0.7
            else [(lo, min(f.size - 1, lo + rng.randrange(1 << 12)))],
        )
    else:
        s = IntSet.values(f.size, rng.sample(range(f.size), rng.randrange(1, 4)))
    return s.complement() if rng.random() < 0.25 else s


def _random_rules(rng: random.Random, n: int) -> list[AclRule]:
    rules = []
    for i in range(n):
        chosen = rng.sample([f.name for f in FIELDS], rng.randrange(0, 4))
        m = Match.of(**{name: _random_set(rng, name) for name in chosen})
        rules.append(
            AclRule(m, rng.choice([VERDICT_PASS, VERDICT_DROP, VERDICT_REJECT]), f"rule {i}")
        )
    return rules


def _random_packet(rng: random.Random, rules: list[AclRule]) -> dict[str, int | None]:
    pkt: dict[str, int | None] = {}
    for f in FIELDS:
        edges = [
            v
            for r in rules
            if f.name in r.match.sets
            for lo, hi in r.match.sets[f.name].spans
            for v in (lo - 1, lo, hi, hi + 1)
        ]
        edges = [v for v in edges if 0 <= v < f.size]
        if edges and rng.random() < 0.8:
            pkt[f.name] = rng.choice(edges)
        else:
            pkt[f.name] = rng.randrange(f.size)
    if rng.random() < 0.1:
        # A later fragment, or UDP: no ports or no flags.
        pkt["sport"] = pkt["dport"] = pkt["flags"] = None
    elif rng.random() < 0.2:
        pkt["flags"] = None
    return pkt


@pytest.mark.parametrize("seed", range(12))
def test_compiled_maps_classify_like_the_rules_in_order(seed: int) -> None:
    rng = random.Random(seed)
    rules = _random_rules(rng, rng.randrange(1, 150))
    default = rng.choice([VERDICT_PASS, VERDICT_DROP])
    acl = compile_rules(rules, default)
    for _ in range(300):
        pkt = _random_packet(rng, rules)
        assert classify(acl, pkt) == first_match(rules, default, pkt), pkt


@pytest.mark.parametrize("seed", range(6))
def test_positions_kept_from_a_previous_translation_classify_the_same(seed: int) -> None:
    rng = random.Random(seed)
    rules = _random_rules(rng, 60)
    first = compile_rules(rules, VERDICT_DROP)
    edited = list(rules)
    for _ in range(5):
        edited.insert(rng.randrange(len(edited) + 1), _random_rules(rng, 1)[0])
        edited.pop(rng.randrange(len(edited)))
    previous = previous_positions(first.maps["rules"])
    again = compile_rules(edited, VERDICT_DROP, previous=first.maps)
    assert list(again.positions) == sorted(set(again.positions))
    kept = sum(
        1 for r, p in zip(edited, again.positions, strict=True) if previous.get(r.rule_id) == p
    )
    assert kept >= len(edited) - 10
    for _ in range(200):
        pkt = _random_packet(rng, edited)
        assert classify(again, pkt) == first_match(edited, VERDICT_DROP, pkt), pkt


def _states_while_written(old: CompiledAcl, new: CompiledAcl) -> list[tuple[MapOp, CompiledAcl]]:
    """Each op of ordered_changes(old, new) and the maps just after it,
    as a PMD thread reading them would see them; an array entry deleted
    reads as zeros, as the controller writes it."""
    maps = {name: {_key(e["key"]): dict(e) for e in entries} for name, entries in old.maps.items()}
    out = []
    for op in ordered_changes(old.maps, new.maps):
        entries = maps.setdefault(op.map, {})
        if op.value is None:
            entries.pop(_key(op.key), None)
        else:
            entries[_key(op.key)] = {"key": op.key, "value": op.value}
        now = {name: list(e.values()) for name, e in maps.items()}
        out.append((op, CompiledAcl(now, new.rules, new.max_rules, new.origins, new.positions)))
    return out


def _key(key: object) -> str:
    return repr(sorted(key.items())) if isinstance(key, dict) else repr(key)


@pytest.mark.parametrize("seed", range(12))
def test_one_rule_added_or_removed_is_never_half_seen(seed: int) -> None:
    """One rule added, then removed again, written as the controller writes
    it: after every single map write each packet gets the verdict of the
    rules before the change or of those after, never a third one (as it
    would from a trie entry pointing at a vector not written yet, or from
    a vector changed while an entry of a negated set still pointed to it)."""
    rng = random.Random(seed)
    rules = _random_rules(rng, rng.randrange(5, 40))
    default = rng.choice([VERDICT_PASS, VERDICT_DROP])
    added = AclRule(_random_rules(rng, 1)[0].match, rng.choice([VERDICT_PASS, VERDICT_DROP,
                    VERDICT_REJECT]), "the added rule")  # fmt: skip
    edited = list(rules)
    edited.insert(rng.randrange(len(edited) + 1), added)
    before = compile_rules(rules, default)
    after = compile_rules(edited, default, previous=before.maps)
    back = compile_rules(rules, default, previous=after.maps)
    probes = [_random_packet(rng, edited) for _ in range(50)]

    def decision(rs: list[AclRule], acl: CompiledAcl, pkt: Mapping[str, int | None]) -> object:
        """The verdict and which rule gave it (its id; None: the default)."""
        verdict, i = first_match(rs, default, pkt)
        return verdict, rs[i].rule_id if i is not None else None

    want = [{decision(rules, before, p), decision(edited, after, p)} for p in probes]
    writes = 0
    for old, new in ((before, after), (after, back)):
        for op, state in _states_while_written(old, new):
            writes += 1
            ids = {e["key"]: e["value"].get("id") for e in state.maps["rules"]}
            for pkt, ok in zip(probes, want, strict=True):
                verdict, bit = decide(state, pkt)
                got = (verdict, ids.get(bit) if bit is not None else None)
                assert got in ok, (op, pkt, got, ok)
    assert writes > 0


def _edited(rng: random.Random, rules: list[AclRule], n: int) -> list[AclRule]:
    """'rules' with 'n' edits: rules moved, added (new ids) and removed."""
    out = list(rules)
    for k in range(n):
        op = rng.random()
        if op < 0.35 and len(out) > 1:
            out.insert(rng.randrange(len(out)), out.pop(rng.randrange(len(out))))
        elif op < 0.7 or not out:
            new = _random_rules(rng, 1)[0]
            verdict = rng.choice([VERDICT_PASS, VERDICT_DROP, VERDICT_REJECT])
            out.insert(rng.randrange(len(out) + 1),
                       AclRule(new.match, verdict, f"added {rng.random()} {k}"))  # fmt: skip
        else:
            out.pop(rng.randrange(len(out)))
    return out


@pytest.mark.parametrize("seed", range(16))
def test_any_change_takes_effect_in_one_write(seed: int) -> None:
    """A chain of translations, each moving, adding and removing several
    rules, and maybe changing the default, written as the controller
    writes them: after every write before config's, each packet gets the
    decision of the rules before the change (verdict and rule), and from
    config's write on that of the rules after it: never some of each."""
    rng = random.Random(seed)
    chain = [(_random_rules(rng, rng.randrange(5, 40)), VERDICT_DROP)]
    for _ in range(5):
        edits = rng.choice([0, 1, 2, 4, 8])
        default = rng.choice([VERDICT_PASS, VERDICT_DROP]) if rng.random() < 0.3 else chain[-1][1]
        chain.append((_edited(rng, chain[-1][0], edits), default))
    compiled = [compile_rules(chain[0][0], chain[0][1], max_rules=128)]
    for rules, default in chain[1:]:
        compiled.append(compile_rules(rules, default, max_rules=128, previous=compiled[-1].maps))
    everything = [r for rules, _ in chain for r in rules]
    probes = [_random_packet(rng, everything) for _ in range(60)]

    def decisions(n: int) -> list[tuple[int, int | None]]:
        rules, default = chain[n]
        out = []
        for p in probes:
            verdict, i = first_match(rules, default, p)
            out.append((verdict, rules[i].rule_id if i is not None else None))
        return out

    for n in range(1, len(chain)):
        before, after = decisions(n - 1), decisions(n)
        states = _states_while_written(compiled[n - 1], compiled[n])
        for k, (op, state) in enumerate(states):
            flipped = op.map == "config"
            assert flipped == (k == len(states) - 1) or not flipped
            ids = {e["key"]: e["value"].get("id") for e in state.maps["rules"]}
            got = [(v, ids.get(b) if b is not None else None) for v, b in decide_all(state, probes)]
            for pkt, have, old, new in zip(probes, got, before, after, strict=True):
                assert have == (new if flipped else old), (n, k, op, pkt)
        # Once written, the maps are the new translation's.
        for pkt, want in zip(probes, after, strict=True):
            verdict, bit = decide(compiled[n], pkt)
            ids = {e["key"]: e["value"].get("id") for e in compiled[n].maps["rules"]}
            assert (verdict, ids.get(bit) if bit is not None else None) == want


def test_a_rule_whose_match_or_verdict_changes_is_another_rule() -> None:
    """Same text, another port number or verdict: another id, so another
    position, so the change takes effect in config's write like any
    other (in place, its bits would change field by field)."""
    text = HEAD + "-A FORWARD -i eth1 -p tcp --dport 22 -j ACCEPT\n-A FORWARD -j DROP\n"
    one = ipt.flatten(ipt.parse_save(text + "COMMIT\n", {"eth1": 1}))[0]
    three = ipt.flatten(ipt.parse_save(text + "COMMIT\n", {"eth1": 3}))[0]
    assert one[0].rule_id != three[0].rule_id
    assert one[1].rule_id == three[1].rule_id
    assert AclRule(one[1].match, VERDICT_PASS, key=one[1].key).rule_id != one[1].rule_id
    first = compile_rules(one, VERDICT_DROP)
    again = compile_rules(three, VERDICT_DROP, previous=first.maps)
    assert again.positions[0] not in first.positions
    assert again.positions[1] == first.positions[1]


def test_a_change_that_leaves_no_room_is_refused() -> None:
    """The rules in force keep their positions while a change is written:
    a change needs room for its new and moved rules beside them."""
    rules = [AclRule(Match.of(proto=IntSet.values(256, [p])), VERDICT_PASS, f"r{p}")
             for p in range(32)]  # fmt: skip
    first = compile_rules(rules, VERDICT_DROP, max_rules=64)
    # Every rule replaced: all take the 32 positions the first left free.
    replaced = [AclRule(r.match, VERDICT_DROP, r.origin + " dropped") for r in rules]
    again = compile_rules(replaced, VERDICT_DROP, max_rules=64, previous=first.maps)
    assert not set(again.positions) & set(first.positions)
    # One more than that does not fit.
    more = [*replaced, AclRule(Match(), VERDICT_PASS, "one more")]
    with pytest.raises(AclError, match=r"33 rules, and 32 positions held by the rules in force"):
        compile_rules(more, VERDICT_DROP, max_rules=64, previous=first.maps)


def test_allocation_leaves_room_and_moves_few_rules() -> None:
    assert allocate([1, 2, 3], {}, 1024) == [2, 6, 10]
    # Before the first, in the room left there.
    assert allocate([9, 1, 2, 3], {1: 2, 2: 6, 3: 10}, 1024) == [0, 2, 6, 10]
    # A rule between two others takes the room between them.
    assert allocate([1, 9, 2, 3], {1: 0, 2: 4, 3: 8}, 1024) == [0, 2, 4, 8]
    # At the end, after a gap.
    assert allocate([1, 2, 3, 9], {1: 0, 2: 4, 3: 8}, 1024) == [0, 4, 8, 12]
    # No room before the first: the neighbour moves, nothing else.
    assert allocate([9, 1, 2, 3], {1: 0, 2: 4, 3: 8}, 1024) == [0, 2, 4, 8]
    # A full ACL is packed.
    assert allocate(list(range(64)), {}, 64) == list(range(64))
    with pytest.raises(AclError, match="65 rules, the ACL holds 64"):
        allocate(list(range(65)), {}, 64)


def test_rules_beyond_the_limit_are_refused() -> None:
    rules = [AclRule(Match(), VERDICT_PASS)] * 65
    with pytest.raises(AclError, match="65 rules after expansion, the ACL holds 64"):
        compile_rules(rules, VERDICT_DROP, max_rules=64)
    with pytest.raises(AclError, match="multiple of 64"):
        compile_rules(rules, VERDICT_DROP, max_rules=100)
    assert compile_rules(rules, VERDICT_DROP, max_rules=128).rules == 65


def test_state_tracking_is_on_only_when_a_rule_reads_the_state() -> None:
    plain = compile_rules([AclRule(Match.of(proto=IntSet.values(256, [6])), 2)], 1)
    assert plain.maps["config"] == [{"key": 0, "value": {}}]
    st = compile_rules([AclRule(Match.of(state=IntSet.values(5, [2])), 2)], 1)
    assert st.maps["config"] == [{"key": 0, "value": {"track": 1}}]
    assert st.maps["rules"][-1] == {"key": 1024, "value": {"verdict": 1}}


# -- iptables-save: parsing ---------------------------------------------

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def _parse(body: str, **kw: object) -> ipt.Ruleset:
    return ipt.parse_save(HEAD + body + "COMMIT\n", **kw)  # type: ignore[arg-type]


def _flat(body: str, **kw: object) -> tuple[list[AclRule], int]:
    return ipt.flatten(_parse(body, **kw))


def test_parses_the_usual_matches() -> None:
    rules, default = _flat(
        "-A FORWARD -s 10.0.0.0/8 -d 192.0.2.1/32 -p tcp -m tcp --sport 1024:65535 "
        "--dport 22 -j ACCEPT\n"
        "-A FORWARD -i eth0 -p udp -m multiport --dports 53,123:124 -j DROP\n"
        "-A FORWARD -p icmp -m icmp --icmp-type echo-request -j ACCEPT\n"
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j REJECT --reject-with tcp-reset\n"
        '-A FORWARD -m comment --comment "the rest" -j DROP\n',
        ports={"eth0": 7},
    )
    assert default == VERDICT_DROP
    assert [r.verdict for r in rules] == [2, 1, 2, 2, 16, 1]
    m = rules[0].match
    assert m.allowed("src") == _net("10.0.0.0/8")
    assert m.allowed("dst") == _net("192.0.2.1")
    assert m.allowed("sport").spans == ((1024, 65535),)
    assert m.allowed("dport").spans == ((22, 22),)
    assert rules[1].match.allowed("in_port").spans == ((7, 7),)
    assert rules[1].match.allowed("dport").spans == ((53, 53), (123, 124))
    assert rules[2].match.allowed("sport").spans == ((8, 8),)
    assert "dport" not in rules[2].match.sets  # every code
    assert rules[3].match.allowed("state").spans == ((2, 3),)
    assert set(rules[4].match.allowed("flags")) == {b for b in range(256) if b & 0x06 == 0x02}
    assert rules[5].match.sets == {}
    assert "line 10" in rules[5].origin
    assert "the rest" in rules[5].origin


def test_negations_and_either_port() -> None:
    rules, _ = _flat(
        "-A FORWARD ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 80 -j ACCEPT\n"
        "-A FORWARD -p udp -m multiport --ports 53 -j ACCEPT\n"
        "-A FORWARD ! -p tcp -j DROP\n"
    )
    assert rules[0].match.allowed("src") == _net("10.0.0.0/8").complement()
    assert 80 not in rules[0].match.allowed("dport")
    assert 81 in rules[0].match.allowed("dport")
    # --ports: the source port or the destination port, two rules.
    assert [set(r.match.sets) for r in rules[1:3]] == [{"proto", "sport"}, {"proto", "dport"}]
    assert 6 not in rules[3].match.allowed("proto")
    assert 17 in rules[3].match.allowed("proto")


def test_iptables_save_counters_and_comments_are_read() -> None:
    rules, _ = ipt.flatten(
        ipt.parse_save(
            "# Generated by iptables-save\n*filter\n:FORWARD ACCEPT [5:300]\n"
            "[3:120] -A FORWARD -s 10.0.0.1/32 -j DROP\nCOMMIT\n# Completed\n"
        )
    )
    assert len(rules) == 1
    assert rules[0].verdict == VERDICT_DROP


@pytest.mark.parametrize(("body", "message"), [
    ("-A FORWARD -m limit --limit 5/s -j ACCEPT\n", "line 5: match -m limit is not supported"),
    ("-A FORWARD -o eth1 -j ACCEPT\n", "line 5: -o .* is not supported"),
    ("-A FORWARD -p tcp -j MARK --set-mark 1\n", "line 5: target MARK is not supported"),
    ("-A FORWARD -j nowhere\n", "line 5: target nowhere is not a chain"),
    ("-A FORWARD -i eth9 -j DROP\n", "line 5: interface 'eth9' has no port number: give --port"),
    ("-A FORWARD --dport 22 -j DROP\n", "line 5: --dport needs -m tcp"),
    ("-A FORWARD -p icmp -m tcp --dport 22 -j DROP\n", "line 5: --dport needs -p tcp or -p udp"),
    ("-A FORWARD -s 10.0.0.300 -j DROP\n", "line 5: '10.0.0.300' is not an IPv4 address"),
    ("-A FORWARD -s example.org -j DROP\n", "host names"),
    ("-A FORWARD -s 10.0.0.1 -j ACCEPT\n-A FORWARD -d 2001:db8::/32 -j DROP\n",
     "line 5: '10.0.0.1' is an IPv4 address, in an ip6tables-save dump"),
    ("-A FORWARD -p tcp -m tcp --dport 90:80 -j DROP\n", "runs backwards"),
    ("-A FORWARD -m conntrack --ctstate DNAT -j DROP\n", "connection state 'DNAT' is not supported"),
    ("-A FORWARD ! ! -s 10.0.0.1 -j DROP\n", "'!' twice"),
    ("-A NOPE -j DROP\n", "line 5: chain NOPE is not declared"),
    ("-I FORWARD -j DROP\n", "line 5: expected '-A CHAIN ...'"),
    ("-A FORWARD -p tcp -m tcp --tcp-flags SYN,BOGUS SYN -j DROP\n", "unknown TCP flag 'BOGUS'"),
    ("-A FORWARD -p frobnicate -j DROP\n", "unknown protocol 'frobnicate'"),
    ("-A FORWARD -p icmp -m icmp --icmp-type nonsense -j DROP\n", "unknown ICMP type"),
    ("-A FORWARD -s 'unterminated -j DROP\n", "line 5: No closing quotation"),
])  # fmt: skip
def test_what_cannot_be_translated_is_named_with_its_line(body: str, message: str) -> None:
    with pytest.raises(ipt.IptablesError, match=message):
        _parse(body)


SAVE6 = """# Generated by ip6tables-save v1.8.9 (nf_tables)
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT
-A FORWARD -p icmpv6 -m icmp6 --icmpv6-type 1/4 -j ACCEPT
-A FORWARD -s 2001:db8:1::/48 ! -d 2001:db8:1:2::/64 -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -m iprange --src-range 2001:db8::10-2001:db8::1f -j REJECT
COMMIT
"""


def _pkt6(**fields: object) -> dict[str, int | None]:
    out = {k: v for k, v in _pkt().items() if k not in ("src", "dst")}
    out["src6"] = out["dst6"] = 1
    for k, v in fields.items():
        out[k] = int(ipaddress.IPv6Address(v)) if isinstance(v, str) else v  # type: ignore[assignment]
    return out


def test_an_ip6tables_dump_becomes_acl6_rules() -> None:
    rs = ipt.parse_save(SAVE6)
    assert rs.family == 6
    rules, default = ipt.flatten(rs)
    acl = compile_rules(rules, default, family=6)
    assert acl.family == 6
    assert {"src6", "dst6"} <= set(acl.maps)
    assert not {"src", "dst"} & set(acl.maps)
    assert acl.maps["src6"][0]["key"] == {"prefixlen": 0, "addr": "::"}
    cases = [
        (_pkt6(proto=58, sport=128, dport=0, flags=None), VERDICT_PASS),
        (_pkt6(proto=58, sport=129, dport=0, flags=None), VERDICT_DROP),
        (_pkt6(proto=58, sport=1, dport=4, flags=None, state=0), VERDICT_PASS),
        (_pkt6(proto=58, sport=1, dport=3, flags=None), VERDICT_DROP),
        (_pkt6(src6="2001:db8:1:5::1", dst6="2001:db8:9::1", dport=22), VERDICT_PASS),
        (_pkt6(src6="2001:db8:1:5::1", dst6="2001:db8:1:2::1", dport=22), VERDICT_DROP),
        (_pkt6(src6="2001:db8::1f", dport=23), VERDICT_REJECT),
        (_pkt6(src6="2001:db8::20", dport=23), VERDICT_DROP),
        (_pkt6(state=2, dport=9), VERDICT_PASS),
    ]
    for pkt, want in cases:
        assert classify(acl, pkt)[0] == want == first_match(rules, default, pkt)[0], pkt


def test_the_family_is_the_dumps_own() -> None:
    v4 = (
        "# Generated by iptables-save v1.8.9\n"
        + HEAD
        + "-A FORWARD -s 10.0.0.0/8 -j DROP\nCOMMIT\n"
    )
    assert ipt.parse_save(v4).family == 4
    assert ipt.parse_save(HEAD + "-A FORWARD ! -s fd00::/8 -j DROP\nCOMMIT\n").family == 6
    with pytest.raises(
        ipt.IptablesError, match=r"an IPv6 dump \(ip6tables-save\), not IPv4 as asked"
    ):
        ipt.parse_save(SAVE6, family=4)
    bad = v4.replace("10.0.0.0/8", "2001:db8::/32")
    with pytest.raises(ipt.IptablesError, match=re.escape("line 6: '2001:db8::/32' is an IPv6 address, in "
                       "an iptables-save dump (IPv4): translate each family's dump on its own")):  # fmt: skip
        ipt.parse_save(bad)
    with pytest.raises(AclError, match="dst6, src6: not a field of the IPv4 classifier"):
        compile_rules(ipt.flatten(ipt.parse_save(SAVE6))[0], VERDICT_DROP)


def test_one_policy_runs_both_families() -> None:
    v4 = HEAD + "-A FORWARD -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n"
    opts = PolicyOptions(source="bpf/acl.c", prog_id=7)
    result = from_iptables([("rules.v6", SAVE6), ("rules.v4", v4)], opts)
    doc = yaml.safe_load(result.text)
    assert doc["programs"] == {
        "acl": {"source": "bpf/acl.c", "id": 7},
        "acl6": {"source": "bpf/acl6.c", "id": 8},
    }
    assert [a.family for a in result.acls] == [4, 6]
    assert result.rules == 1 + len(ipt.flatten(ipt.parse_save(SAVE6))[0])
    sw = doc["switches"]["s1"]
    assert sw["programs"] == ["acl", "acl6"]
    assert set(sw["maps"]) == {"acl", "acl6"}
    assert "src6" in sw["maps"]["acl6"]
    assert "src" in sw["maps"]["acl"]
    flows = [(f.get("match", {}), f["actions"]) for f in sw["flows"]]
    nd = [m["icmpv6_type"] for m, _ in flows if "icmpv6_type" in m]
    assert nd == [133, 134, 135, 136]
    assert (
        {"eth_type": 0x800},
        [{"bpf": {"prog": "acl", "drop_unless": "pass"}}, "normal"],
    ) in flows
    assert (
        {"eth_type": 0x86DD},
        [{"bpf": {"prog": "acl6", "drop_unless": "pass"}}, "normal"],
    ) in flows
    with pytest.raises(
        AclError, match=r"one dump per address family .*: got a \(IPv4\), b \(IPv4\)"
    ):
        from_iptables([("a", v4), ("b", v4)], opts)
    # A reload against the policy finds both ACLs' positions: nothing to write.
    same = from_iptables([("rules.v4", v4), ("rules.v6", SAVE6)], opts, previous=result.text)
    assert same.changes == (0, 0)
    # An IPv6 dump added to an IPv4 policy: its ACL is all new.
    only4 = from_iptables(v4, opts)
    both = from_iptables([("rules.v4", v4), ("rules.v6", SAVE6)], opts, previous=only4.text)
    assert both.changes == (result.acls[1].entry_count(), 0)
    with pytest.raises(AclError, match=r"the previous policy has no ACL program \(acl or acl6\)"):
        from_iptables([("rules.v4", v4), ("rules.v6", SAVE6)], opts, previous="version: 1\n")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ipt.IptablesError) as e:
        _parse("-A FORWARD -m limit -j ACCEPT\n-A FORWARD -m recent -j DROP\n")
    assert [p.split(":")[0] for p in e.value.problems] == ["line 5", "line 6"]


def test_skip_unsupported_leaves_rules_out_and_lists_them() -> None:
    rs = _parse(
        "-A FORWARD -m limit --limit 1/s -j ACCEPT\n-A FORWARD -p tcp -j ACCEPT\n"
        # lo is no port of the switch (ufw's rule for it, say).
        "-A FORWARD -i lo -j ACCEPT\n-A FORWARD -i veth+ -j ACCEPT\n",
        skip_unsupported=True,
    )
    assert rs.skipped == [
        "line 5: match -m limit is not supported: -A FORWARD -m limit --limit 1/s -j ACCEPT",
        "line 7: interface 'lo' has no port number: give --port lo=NUMBER: "
        "-A FORWARD -i lo -j ACCEPT",
        "line 8: interface 'veth+' matches no port: give --port NAME=NUMBER: "
        "-A FORWARD -i veth+ -j ACCEPT",
    ]
    rules, _ = ipt.flatten(rs)
    assert len(rules) == 1


def test_other_tables_with_rules_are_refused_unless_skipped() -> None:
    text = (
        HEAD + "-A FORWARD -j ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -j DNAT --to 10.0.0.1\nCOMMIT\n*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
    )
    with pytest.raises(ipt.IptablesError, match="table nat: 1 rule"):
        ipt.parse_save(text)
    assert ipt.parse_save(text, skip_unsupported=True).skipped == [
        "table nat: 1 rule(s) not translated (only the filter table is)"
    ]


def test_log_rules_are_noted_not_translated() -> None:
    rs = _parse('-A FORWARD -j LOG --log-prefix "x: "\n-A FORWARD -s 10.0.0.1 -j ACCEPT\n')
    assert rs.notes == ["line 5: LOG: does not decide a packet's fate, not translated"]
    assert len(ipt.flatten(rs)[0]) == 1


def test_rules_that_cannot_change_a_fate_are_noted_whatever_they_match() -> None:
    """ufw's logging chains: a LOG rule with -m limit, and a RETURN with
    -m limit followed only by LOG rules, are noted, not refused; so is a
    rule the ACL cannot read in a chain the translated one never reaches
    (INPUT's '-i lo'), but not a malformed one, nor one that decides."""
    body = (
        ":INPUT DROP [0:0]\n:logdeny - [0:0]\n"
        "-A INPUT -i lo -j ACCEPT\n"
        "-A FORWARD -m conntrack --ctstate INVALID -j logdeny\n"
        "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
        "-A logdeny -m conntrack --ctstate INVALID -m limit --limit 3/min -j RETURN\n"
        '-A logdeny -m limit --limit 3/min -j LOG --log-prefix "[UFW BLOCK] "\n'
    )
    text = "*filter\n:FORWARD DROP [0:0]\n" + body + "COMMIT\n"
    rs = ipt.parse_save(text, chain="FORWARD")
    assert [n.split(": ", 1)[0] + ": " + n.rsplit(": ", 1)[-1] for n in rs.notes] == [
        "line 5: in chain INPUT, which FORWARD never reaches, not translated",
        "line 8: a RETURN with nothing after it that decides a packet's fate, not translated",
        "line 9: does not decide a packet's fate, not translated",
    ]
    rules, _ = ipt.flatten(rs)
    assert [r.line for r in rules] == [7]
    # Without the chain, INPUT's rule counts.
    with pytest.raises(ipt.IptablesError, match=r"line 5: interface 'lo' has no port number"):
        ipt.parse_save(text)
    # A RETURN with a rule that decides after it.
    with pytest.raises(ipt.IptablesError, match=r"line 8: match -m limit is not supported"):
        ipt.parse_save(text.replace("COMMIT", "-A logdeny -j DROP\nCOMMIT"), chain="FORWARD")
    # Malformed is refused, reached or not.
    bad = text.replace("-A INPUT -i lo -j ACCEPT", "-A INPUT -s 10.0.0.300 -j ACCEPT")
    with pytest.raises(ipt.IptablesError, match=r"line 5: .*10\.0\.0\.300"):
        ipt.parse_save(bad, chain="FORWARD")


def test_chain_loops_and_user_chains_as_start_are_refused() -> None:
    rs = ipt.parse_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n"
        "-A FORWARD -j a\n-A a -j b\n-A b -j a\nCOMMIT\n"
    )
    with pytest.raises(ipt.IptablesError, match="chain a jumps back to itself"):
        ipt.flatten(rs)
    with pytest.raises(ipt.IptablesError, match="user chain"):
        ipt.flatten(rs, "a")
    with pytest.raises(ipt.IptablesError, match="chain INPUT is not in the filter table"):
        ipt.flatten(rs, "INPUT")


def test_no_filter_table() -> None:
    with pytest.raises(ipt.IptablesError, match="no filter table"):
        ipt.parse_save("# nothing\n")
    with pytest.raises(ipt.IptablesError, match="outside a table"):
        ipt.parse_save(":FORWARD ACCEPT [0:0]\n")


# -- flattening against iptables' own walk ------------------------------


def _walk(rs: ipt.Ruleset, chain: str, pkt: Mapping[str, int | None]) -> int:
    """iptables' traversal, at run time: a stack of return points."""
    stack: list[tuple[str, int]] = []
    name, i = chain, 0
    while True:
        rules = rs.chains[name]
        if i >= len(rules):
            if not stack:
                return ipt.TERMINAL[rs.policies[chain] or "ACCEPT"]
            name, i = stack.pop()
            continue
        r = rules[i]
        i += 1
        if not any(m.matches(pkt) for m in r.alternatives):
            continue
        if r.target in ipt.TERMINAL:
            return ipt.TERMINAL[r.target]
        if r.target == "RETURN":
            if not stack:
                return ipt.TERMINAL[rs.policies[chain] or "ACCEPT"]
            name, i = stack.pop()
        elif r.target in rs.chains:
            if not r.goto:
                stack.append((name, i))
            name, i = r.target, 0


def _random_save(rng: random.Random) -> str:
    chains = ["c1", "c2", "c3"]
    matches = [
        "-s 10.0.0.0/8",
        "! -s 10.1.0.0/16",
        "-d 192.0.2.0/24",
        "-p tcp",
        "-p udp",
        "-p tcp -m tcp --dport 22",
        "-p tcp -m tcp ! --sport 1000:2000",
        "-m conntrack --ctstate NEW",
        "-m state --state ESTABLISHED,RELATED",
        "-p udp -m multiport --ports 53,5353",
        "-i p1",
        "! -i p2",
        "",
    ]
    lines = [":FORWARD " + rng.choice(["ACCEPT", "DROP"]) + " [0:0]"]
    lines += [f":{c} - [0:0]" for c in chains]
    for ci, chain in enumerate(["FORWARD", *chains]):
        for _ in range(rng.randrange(2, 7)):
            m = " ".join(rng.sample(matches, rng.randrange(0, 3)))
            targets = ["ACCEPT", "DROP", "REJECT", "RETURN"]
            # Jumps only forward: no loops.
            targets += [c for c in chains[ci:]] * 2
            t = rng.choice(targets)
            verb = "-g" if t in chains and rng.random() < 0.3 else "-j"
            lines.append(f"-A {chain} {m} {verb} {t}")
    return "*filter\n" + "\n".join(lines) + "\nCOMMIT\n"


@pytest.mark.parametrize("seed", range(40))
def test_flattened_rules_decide_like_iptables_walks(seed: int) -> None:
    rng = random.Random(seed)
    text = _random_save(rng)
    rs = ipt.parse_save(text, ports={"p1": 1, "p2": 2})
    rules, default = ipt.flatten(rs)
    acl = compile_rules(rules, default)
    for _ in range(300):
        pkt: dict[str, int | None] = {
            "in_port": rng.choice([1, 2, 3]),
            "src": rng.choice([_ip("10.1.2.3"), _ip("10.9.9.9"), _ip("11.0.0.1")]),
            "dst": rng.choice([_ip("192.0.2.7"), _ip("8.8.8.8")]),
            "proto": rng.choice([6, 17, 1]),
            "sport": rng.choice([999, 1000, 1500, 2001, 53]),
            "dport": rng.choice([22, 53, 5353, 80]),
            "flags": rng.choice([None, 2, 0x10]),
            "state": rng.randrange(5),
        }
        want = _walk(rs, "FORWARD", pkt)
        assert first_match(rules, default, pkt)[0] == want, (text, pkt)
        assert classify(acl, pkt)[0] == want, (text, pkt)


# -- okopy import iptables ----------------------------------------------


def _okopy(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okopy", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_writes_a_policy(tmp_path: Path) -> None:
    save = tmp_path / "fw.save"
    save.write_text(
        HEAD + "-A FORWARD -i lan -p tcp -m tcp --dport 22 -j ACCEPT\n-A FORWARD -j LOG\nCOMMIT\n"
    )
    out = tmp_path / "policy.yaml"
    done = _okopy(
        "import",
        "iptables",
        str(save),
        "--port",
        "lan=3",
        "-o",
        str(out),
        "--switch",
        "edge",
        "--dpid",
        "0x2a",
        "--then",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "note: line 6: LOG" in done.stderr
    assert f"{out}: 1 ACL rules" in done.stderr
    policy = yaml.safe_load(out.read_text())
    assert Path(policy["programs"]["acl"]["source"]).resolve() == ROOT / "bpf/acl.c"
    sw = policy["switches"]["edge"]
    assert sw["dpid"] == 0x2A
    rules = sw["maps"]["acl"]["rules"]
    assert rules[0]["key"] == 2
    assert rules[0]["value"]["verdict"] == VERDICT_PASS
    assert rules[0]["value"]["id"] > 0
    assert rules[1] == {"key": 1024, "value": {"verdict": 1}}
    assert sw["flows"][0]["actions"] == [
        {"bpf": {"prog": "acl", "drop_unless": "pass"}},
        {"output": 2},
    ]
    assert "# ACCEPT line 5: -A FORWARD -i lan" in out.read_text()


def test_a_chain_can_become_a_verdict_for_openflow(tmp_path: Path) -> None:
    """--verdict CHAIN=N[:ACTIONS]: jumps (and gotos) to CHAIN end with
    verdict N, CHAIN's own rules are not walked, and the policy's table 1
    acts on N; the policy is one check-config accepts."""
    body = (
        ":SUSPECT - [0:0]\n"
        "-A FORWARD -s 10.6.6.0/24 -j SUSPECT\n"
        "-A FORWARD -p udp -g SUSPECT\n"
        "-A FORWARD -p tcp -j ACCEPT\n"
        "-A SUSPECT -p tcp -j ACCEPT\n"
    )
    rules, default = ipt.flatten(_parse(body), "FORWARD", {"SUSPECT": 20})
    assert [r.verdict for r in rules] == [20, 20, VERDICT_PASS]
    assert first_match(rules, default, _pkt(src="10.6.6.1", proto=6)) == (20, 0)
    assert first_match(rules, default, _pkt(src="10.1.1.1", proto=17)) == (20, 1)
    with pytest.raises(ipt.IptablesError, match="--verdict NOPE: the filter table has no user"):
        ipt.flatten(_parse(body), "FORWARD", {"NOPE": 20})
    with pytest.raises(ipt.IptablesError, match="--verdict FORWARD: a built-in chain"):
        ipt.flatten(_parse(body), "FORWARD", {"FORWARD": 20})

    save = tmp_path / "fw.save"
    save.write_text(HEAD + body + "COMMIT\n")
    out = tmp_path / "policy.yaml"
    done = _okopy("import", "iptables", str(save), "-o", str(out),
                  "--verdict", "SUSPECT=20:controller,3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    flows = yaml.safe_load(out.read_text())["switches"]["s1"]["flows"]
    assert flows == [
        {"table": 0, "priority": 100, "match": {"eth_type": 0x800},
         "actions": [{"bpf": {"prog": "acl", "table": 1}}]},
        {"table": 1, "priority": 100, "match": {"bpf_verdict": "pass"}, "actions": ["normal"]},
        {"table": 1, "priority": 100, "match": {"bpf_verdict": 20},
         "actions": ["controller", {"output": 3}]},
        {"table": 1, "priority": 0, "actions": ["drop"]},
        {"table": 0, "priority": 0, "actions": ["normal"]},
    ]  # fmt: skip
    assert "# -> SUSPECT line 6: -A FORWARD -s 10.6.6.0/24 -j SUSPECT" in out.read_text()
    check = _okopy("check-config", str(out))
    assert check.returncode == 0, check.stderr
    twice = _okopy("import", "iptables", str(save), "--verdict", "SUSPECT=20",
                   "--verdict", "SUSPECT=21")  # fmt: skip
    assert twice.returncode == 1
    assert "--verdict names SUSPECT more than once" in twice.stderr


@pytest.mark.parametrize(("arg", "message"), [
    ("SUSPECT", "give CHAIN=NUMBER"),
    ("SUSPECT=x", "give CHAIN=NUMBER"),
    ("SUSPECT=4", "from 5 to 4294967295, not 16"),
    ("SUSPECT=16", "from 5 to 4294967295, not 16"),
    ("SUSPECT=4294967296", "from 5 to 4294967295, not 16"),
    ("SUSPECT=20:bogus", "action 'bogus' for --verdict SUSPECT: normal, flood, in_port, "
     "controller, drop or a port number"),
])  # fmt: skip
def test_bad_verdict_arguments_are_refused(arg: str, message: str) -> None:
    with pytest.raises(AclError, match=message):
        CustomVerdict.parse(arg)


def test_import_errors_and_standard_streams(tmp_path: Path) -> None:
    done = _okopy("import", "iptables", "-", stdin=HEAD + "-A FORWARD -m recent -j DROP\nCOMMIT\n")
    assert done.returncode == 1
    assert "okopy: error: line 5: match -m recent is not supported" in done.stderr
    assert done.stdout == ""
    done = _okopy(
        "import",
        "iptables",
        "-",
        "--skip-unsupported",
        stdin=HEAD + "-A FORWARD -m recent -j DROP\nCOMMIT\n",
    )
    assert done.returncode == 0, done.stderr
    assert "skipped: line 5: match -m recent" in done.stderr
    assert "# skipped: line 5" in done.stdout
    assert yaml.safe_load(done.stdout)["version"] == 1
    done = _okopy("import", "iptables", str(tmp_path / "missing.save"))
    assert done.returncode == 1
    assert "missing.save: No such file" in done.stderr
    done = _okopy("import", "iptables", "-", "--port", "eth0", stdin=HEAD + "COMMIT\n")
    assert done.returncode == 1
    assert "expected NAME=NUMBER" in done.stderr
    done = _okopy("import", "iptables", "-", "--then", "sideways", stdin=HEAD + "COMMIT\n")
    assert done.returncode == 1
    assert "action 'sideways'" in done.stderr


def test_one_rule_changed_is_a_few_map_writes(tmp_path: Path) -> None:
    """Against the previous policy, adding, removing or moving one rule
    changes a handful of entries; the rest keep their positions."""
    body = "".join(
        f"-A FORWARD -s 10.{i}.0.0/16 -p tcp -m tcp --dport {1000 + i} -j ACCEPT\n"
        for i in range(100)
    )
    first = tmp_path / "first.yaml"
    save = tmp_path / "fw.save"
    save.write_text(HEAD + body + "COMMIT\n")
    assert _okopy("import", "iptables", str(save), "-o", str(first)).returncode == 0
    edits = {
        "added": body.replace(
            "-A FORWARD -s 10.50.",
            "-A FORWARD -s 172.16.0.0/12 -p udp -j DROP\n-A FORWARD -s 10.50.",
            1,
        ),
        "removed": body.replace(
            "-A FORWARD -s 10.7.0.0/16 -p tcp -m tcp --dport 1007 -j ACCEPT\n", ""
        ),
        "moved": "-A FORWARD -s 10.99.0.0/16 -p tcp -m tcp --dport 1099 -j ACCEPT\n"
        + body.replace("-A FORWARD -s 10.99.0.0/16 -p tcp -m tcp --dport 1099 -j ACCEPT\n", ""),
    }
    old = yaml.safe_load(first.read_text())["switches"]["s1"]["maps"]["acl"]
    for what, text in edits.items():
        save.write_text(HEAD + text + "COMMIT\n")
        out = tmp_path / f"{what}.yaml"
        done = _okopy("import", "iptables", str(save), "--previous", str(first), "-o", str(out))
        assert done.returncode == 0, done.stderr
        new = yaml.safe_load(out.read_text())["switches"]["s1"]["maps"]["acl"]
        written, deleted = changed_entries(old, new)
        assert f"against {first}: {written} map entries written, {deleted} deleted" in done.stderr
        assert written + deleted <= 10, (what, written, deleted)
        assert written + deleted >= 3, what
    done = _okopy("import", "iptables", str(save), "--previous", str(save))
    assert done.returncode == 1
    assert "the previous policy has no map entries of program acl" in done.stderr


def test_import_takes_a_dump_of_each_family(tmp_path: Path) -> None:
    v4, v6 = tmp_path / "rules.v4", tmp_path / "rules.v6"
    v4.write_text(HEAD + "-A FORWARD -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n")
    v6.write_text(SAVE6)
    out = tmp_path / "p.yaml"
    done = _okopy("import", "iptables", str(v4), str(v6), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert set(yaml.safe_load(out.read_text())["programs"]) == {"acl", "acl6"}
    done = _okopy("import", "iptables", str(v4), str(v4))
    assert done.returncode == 1
    assert "give one dump per address family" in done.stderr
    done = _okopy("import", "iptables", "-", "-", stdin=SAVE6)
    assert done.returncode == 1
    assert "standard input ('-') can be read once" in done.stderr
