"""Rules -> the map entries of bpf/acl.c.

Rule i is bit i of every vector (its place in first-match order).  For a
field looked up in a trie, the entries are the root and every block of
every rule's cover (okopy.acl.sets), and an entry's vector has the rules
whose set contains the whole block: the longest match for a value then
holds exactly the rules that allow it.  Arrays get, per value, the rules
that allow it.  Rules that allow every value of a field are in that
field's vector of the 'any' map.  The output is the typed JSON of policy
seeds (docs/policy.md), so the controller writes it like any other map
entries and a reload writes only the entries that changed.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from okopy.acl.rules import FIELD, FIELDS, FIELDS6, AclError, AclRule, Field, family_fields
from okopy.acl.sets import IntSet, block

# bpf/acl.c's defaults (ACL_MAX_RULES, ACL_MAX_PREFIXES).
DEFAULT_MAX_RULES = 1024
MAX_TRIE_ENTRIES = 65536
# ACL_MAX_CLASSES: the vectors table, one entry per trie entry (0: none).
MAX_CLASSES = 65536
# enum acl_state UNTRACKED: the state of every packet when nothing tracks.
UNTRACKED = 4


# Room left after each rule when there is room: a rule added later takes
# a free position between its neighbours, and no other rule moves.
GAP = 4


@dataclass(frozen=True)
class CompiledAcl:
    """The entries of each map, as {"key": ..., "value": ...} seeds, and
    the position (bit) each rule got."""

    maps: dict[str, list[dict[str, Any]]]
    rules: int
    max_rules: int
    origins: tuple[str, ...]
    positions: tuple[int, ...] = ()
    family: int = 4  # 4: bpf/acl.c's maps; 6: bpf/acl6.c's

    def entry_count(self) -> int:
        return sum(len(v) for v in self.maps.values())

    def rule_at(self, position: int) -> int | None:
        """The index of the rule at a position."""
        try:
            return self.positions.index(position)
        except ValueError:
            return None


def _increasing(pairs: Sequence[tuple[int, int]]) -> set[int]:
    """The indexes of a longest run of (index, position) pairs whose
    positions increase (patience sorting)."""
    tails: list[int] = []  # positions
    tail_at: list[int] = []  # pair number ending each run length
    back: list[int] = [-1] * len(pairs)
    for n, (_, pos) in enumerate(pairs):
        k = bisect.bisect_left(tails, pos)
        if k == len(tails):
            tails.append(pos)
            tail_at.append(n)
        else:
            tails[k] = pos
            tail_at[k] = n
        back[n] = tail_at[k - 1] if k else -1
    out: set[int] = set()
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        out.add(pairs[n][0])
        n = back[n]
    return out


def allocate(ids: Sequence[int], previous: Mapping[int, int], capacity: int) -> list[int]:
    """Positions (bits) for rules in order: increasing, below 'capacity',
    keeping each rule's previous position (by id) where order allows, and
    putting new rules in the room between their neighbours (moving only
    the rules nearby when there is none)."""
    n = len(ids)
    if n > capacity:
        raise AclError(f"{n} rules, the ACL holds {capacity}")
    claimed: set[int] = set()
    pairs = []
    for i, rid in enumerate(ids):
        p = previous.get(rid)
        if p is not None and 0 <= p < capacity and p not in claimed:
            claimed.add(p)
            pairs.append((i, p))
    keep = _increasing(pairs)
    pos: list[int | None] = [None] * n
    for i, p in pairs:
        if i in keep:
            pos[i] = p
    i = 0
    while i < n:
        if pos[i] is not None:
            i += 1
            continue
        start, end = i, i
        while end < n and pos[end] is None:
            end += 1
        # Free room between the anchors around [start, end); widen over
        # anchors until the rules in it fit.
        while True:
            lo = pos[start - 1] + 1 if start > 0 else 0  # type: ignore[operator]
            hi = pos[end] - 1 if end < n else capacity - 1  # type: ignore[operator]
            if hi - lo + 1 >= end - start:
                break
            if start > 0:
                start -= 1
                pos[start] = None
            if end < n:
                pos[end] = None
                end += 1
                while end < n and pos[end] is None:
                    end += 1
        k = end - start
        room = hi - lo + 1
        # Evenly spread, at most GAP apart: with less room than GAP per
        # rule, the free positions are still spread among the rules, so
        # that a rule added anywhere finds one near.
        step = min(float(GAP), room / k)
        used = int((k - 1) * step) + 1
        # Between two anchors: in the middle, leaving room both ways; at
        # the end: after a gap, leaving the rest for rules added later.
        if end < n:
            first = lo + (room - used) // 2
        elif start > 0:
            first = lo + min(math.ceil(step) - 1, room - used)
        else:
            # Room before the first rule too.
            first = lo + min(int(step // 2), room - used)
        for t in range(k):
            pos[start + t] = first + int(t * step)
        i = end
    return [p for p in pos if p is not None]


def _words(bits: int, max_rules: int) -> dict[str, Any]:
    """A rule bit set as struct acl_bits JSON: the 64-bit words, and the
    summary of which words are not zero (trailing zero words left out:
    the codec zero-fills)."""
    w = [(bits >> (64 * i)) & ((1 << 64) - 1) for i in range(max_rules // 64)]
    summary = sum(1 << i for i, word in enumerate(w) if word)
    s = [(summary >> (64 * i)) & ((1 << 64) - 1) for i in range(-(-len(w) // 64))]
    while w and not w[-1]:
        w.pop()
    while s and not s[-1]:
        s.pop()
    return {"summary": s, "w": w} if w else {}


def _trie_key(f: Field, value: int, plen: int) -> dict[str, Any]:
    shown: Any = value
    if f.key_member == "addr":
        address = ipaddress.IPv4Address if f.trie_bits == 32 else ipaddress.IPv6Address
        shown = str(address(value))
    return {"prefixlen": plen, f.key_member: shown}


def _trie_entries(
    f: Field, rules: Sequence[AclRule], positions: Sequence[int]
) -> dict[tuple[int, int], int]:
    """(block start, prefix length) -> the rules that allow the values
    whose longest match it is.

    A rule's set enters the trie as its cover or, when that is shorter,
    as the cover of its complement (a negated prefix is one block, not 32).
    Either way, for every entry the values whose longest match it is are
    all in the set or all out of it: inside a block of the cover given
    (in), or not inside any (out), whatever other rules' entries are
    nested in it.  So an entry allows a rule when it lies inside a block
    of the rule's cover, or, for a complement cover, inside none of its
    blocks."""
    covers: dict[int, tuple[bool, list[tuple[int, int]]]] = {}
    for i, r in enumerate(rules):
        s = r.match.sets.get(f.name)
        if s is None:
            continue
        if f.reordered:
            s = IntSet.values(f.size, (f.key_value(v) for v in s))
        pos, neg = s.prefixes(f.trie_bits), s.complement().prefixes(f.trie_bits)
        covers[positions[i]] = (True, pos) if len(pos) <= len(neg) else (False, neg)
    entries = {(0, 0)} | {b for _, blocks in covers.values() for b in blocks}
    # Blocks sorted by start; for a start, longer (larger) blocks first.
    order = sorted(entries, key=lambda e: (e[0], e[1]))
    starts = [e[0] for e in order]
    bits = dict.fromkeys(order, 0)
    for i, (_, blocks) in covers.items():
        for value, plen in blocks:
            lo, hi = block(value, plen, f.trie_bits)
            # Entries nested in [lo, hi] start inside it; of those starting
            # at lo, only the ones no larger than it.
            for j in range(bisect.bisect_left(starts, lo), bisect.bisect_right(starts, hi)):
                e = order[j]
                if block(e[0], e[1], f.trie_bits)[1] <= hi:
                    bits[e] |= 1 << i
    negative = sum(1 << i for i, (positive, _) in covers.items() if not positive)
    return {e: b ^ negative for e, b in bits.items()}


def compile_rules(
    rules: Sequence[AclRule],
    default: int,
    max_rules: int = DEFAULT_MAX_RULES,
    previous: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    family: int = 4,
) -> CompiledAcl:
    """The maps of bpf/acl.c, or of bpf/acl6.c for 'family' 6 (built with
    ACL_MAX_RULES = max_rules), that classify like 'rules' read in order,
    with 'default' for no match.
    'previous' is the maps an earlier translation wrote: rules keep their
    positions and trie entries their classes where they can, so the maps
    differ from the earlier ones in a few entries per changed rule."""
    if max_rules <= 0 or max_rules % 64:
        raise AclError(f"the rule limit {max_rules} is not a positive multiple of 64")
    if len(rules) > max_rules:
        raise AclError(
            f"{len(rules)} rules after expansion, the ACL holds {max_rules} "
            f"(build it with a larger ACL_MAX_RULES)"
        )
    fields = family_fields(family)
    names = {f.name for f in fields}
    for r in rules:
        other = sorted(set(r.match.sets) - names)
        if other:
            raise AclError(
                f"{r.origin or 'a rule'}: {', '.join(other)}: not a field of the "
                f"IPv{family} classifier"
            )
    old = previous or {}
    positions = allocate(
        [r.rule_id for r in rules], previous_positions(old.get("rules", [])), max_rules
    )
    maps: dict[str, list[dict[str, Any]]] = {}
    any_vectors = []
    tries: list[tuple[Field, dict[str, Any], int]] = []
    for f in fields:
        wild = sum(1 << positions[i] for i, r in enumerate(rules) if f.name not in r.match.sets)
        any_vectors.append(_words(wild, max_rules))
        entries: list[dict[str, Any]] = []
        if f.trie_bits:
            trie = _trie_entries(f, rules, positions)
            if len(trie) > MAX_TRIE_ENTRIES:
                raise AclError(
                    f"field {f.name} needs {len(trie)} trie entries, the map "
                    f"holds {MAX_TRIE_ENTRIES}"
                )
            tries += [
                (f, _trie_key(f, value, plen), b) for (value, plen), b in sorted(trie.items())
            ]
        else:
            per_value: dict[int, int] = {}
            for i, r in enumerate(rules):
                s = r.match.sets.get(f.name)
                if s is not None:
                    for v in s:
                        per_value[v] = per_value.get(v, 0) | (1 << positions[i])
            for v, b in sorted(per_value.items()):
                entries.append({"key": v, "value": _words(b, max_rules)})
        maps[f.name] = entries
    # Trie entries hold classes, indexes of their vectors.  An entry keeps
    # the class it had before if its vector is unchanged; otherwise it gets
    # a class no entry of the earlier maps had, its vector written before
    # the entry points to it: a class's vector never changes while an
    # entry points to it (see ordered_changes()).  The classes entries no
    # longer point to are free for the next translation (0 is no rule).
    was = {
        (f.name, _json_key(e["key"])): e["value"]
        for f in fields
        if f.trie_bits
        for e in old.get(f.name, [])
        if isinstance(e.get("value"), int)
    }
    old_vectors = {e["key"]: e["value"] for e in old.get("vectors", [])}
    taken: set[int] = set()
    wanted = [(f, key, _words(bits, max_rules)) for f, key, bits in tries]
    kept: dict[tuple[str, str], int] = {}
    for f, key, vector in wanted:
        c = was.get((f.name, _json_key(key)), 0)
        if 0 < c < MAX_CLASSES and c not in taken and old_vectors.get(c) == vector:
            kept[f.name, _json_key(key)] = c
            taken.add(c)
    in_use = set(was.values()) | set(old_vectors)
    free = (c for c in range(1, MAX_CLASSES) if c not in in_use)
    # Only when nothing else is left: classes the earlier maps used and
    # this translation does not keep (a change that takes one is correct
    # once written, not while it is written).
    last_resort = iter(sorted(in_use - taken - {0}))
    vectors: list[dict[str, Any]] = []
    for f, key, vector in wanted:
        c = kept.get((f.name, _json_key(key))) or next(free, 0) or next(last_resort, 0)
        if not 0 < c < MAX_CLASSES:
            raise AclError(f"the tries need more than {MAX_CLASSES - 1} entries in all")
        maps[f.name].append({"key": key, "value": c})
        vectors.append({"key": c, "value": vector})
    maps["vectors"] = sorted(vectors, key=lambda e: e["key"])
    maps["any"] = [{"key": 0, "value": {"field": any_vectors}}]
    maps["rules"] = [{"key": positions[i], "value": _rule_value(r)} for i, r in enumerate(rules)]
    maps["rules"].append({"key": max_rules, "value": {"verdict": default}})
    track = any("state" in r.match.sets for r in rules)
    maps["config"] = [{"key": 0, "value": {"track": 1} if track else {}}]
    ordered = {name: maps[name] for name in WRITE_ORDER if name in maps}
    return CompiledAcl(
        ordered, len(rules), max_rules, tuple(r.origin for r in rules), tuple(positions), family
    )


def _rule_value(r: AclRule) -> dict[str, Any]:
    """struct acl_rule: the verdict and the rule's id (counters start at
    zero).  Not the source line: it moves when other rules are added, and
    the entry would be written again for nothing; the policy file says it
    next to the entry."""
    return {"verdict": r.verdict, "id": r.rule_id}


def previous_positions(rules_entries: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Rule ids -> positions, from the 'rules' entries of an earlier
    translation (a policy's seeds, or the switch's map)."""
    out: dict[int, int] = {}
    for e in rules_entries:
        value = e.get("value")
        if (
            isinstance(value, Mapping)
            and isinstance(value.get("id"), int)
            and value["id"]
            and isinstance(e.get("key"), int)
        ):
            out[value["id"]] = e["key"]
    return out


# The order in which the maps of a change are written (see
# ordered_changes()); a policy lists them in this order.
# (Both families' fields: each program has the maps of one.)
WRITE_ORDER = (
    "rules",
    "vectors",
    *dict.fromkeys(f.name for pair in zip(FIELDS, FIELDS6, strict=True) for f in pair),
    "any",
    "config",
)


@dataclass(frozen=True)
class MapChange:
    """What one map needs to go from one translation to the next: the
    entries to write ({"key", "value"}) and the keys to delete."""

    written: tuple[Mapping[str, Any], ...]
    deleted: tuple[Any, ...]


def map_changes(
    old: Mapping[str, Sequence[Mapping[str, Any]]], new: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, MapChange]:
    """Per map, the entries written and the keys deleted to go from 'old'
    maps to 'new' (maps with no change left out)."""
    out = {}
    for name in sorted(set(old) | set(new)):
        before = {_json_key(e["key"]): e for e in old.get(name, [])}
        after = {_json_key(e["key"]): e for e in new.get(name, [])}
        written = tuple(
            e for k, e in after.items() if k not in before or before[k]["value"] != e["value"]
        )
        deleted = tuple(e["key"] for k, e in before.items() if k not in after)
        if written or deleted:
            out[name] = MapChange(written, deleted)
    return out


@dataclass(frozen=True)
class MapOp:
    """One entry written ('value' given) or deleted ('value' None)."""

    map: str
    key: Any
    value: Any | None


def ordered_changes(
    old: Mapping[str, Sequence[Mapping[str, Any]]], new: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[MapOp]:
    """map_changes() as one sequence of writes and deletions, in an order in
    which bpf/acl.c, reading the maps while they are written, classifies
    every packet as the 'old' maps or as the 'new' ones do, when the two
    differ by one rule added or removed (a packet's fields are read one
    after the other, so a rule moved, or several rules changed, may meet
    a packet half made: some fields with their old bits, some new):

    - writes first, map by map in WRITE_ORDER: a rule's verdict before any
      of its bits; the vectors, all of classes no trie entry points to
      yet (compile_rules() gives a changed vector a new class), before
      the trie entries that then point to them; each trie entry, array
      entry (proto, state) and 'any' entry written switches the packets
      it decides from their old bits to their new ones in one write;
    - then deletions, maps in the reverse order: a trie entry before the
      vector of the class it pointed to; a rule's verdict after its bits.

    This is the order the controller applies a reloaded policy's seeds in:
    writes in the policy's order, deletions in the reverse of the previous
    policy's."""
    changes = map_changes(old, new)
    order = [*WRITE_ORDER, *sorted(changes.keys() - set(WRITE_ORDER))]
    ops = [
        MapOp(name, e["key"], e["value"])
        for name in order
        if name in changes
        for e in changes[name].written
    ]
    ops += [
        MapOp(name, key, None)
        for name in reversed(order)
        if name in changes
        for key in changes[name].deleted
    ]
    return ops


def changed_entries(
    old: Mapping[str, Sequence[Mapping[str, Any]]], new: Mapping[str, Sequence[Mapping[str, Any]]]
) -> tuple[int, int]:
    """(entries written, entries deleted) to go from 'old' maps to 'new'."""
    changes = map_changes(old, new).values()
    return sum(len(c.written) for c in changes), sum(len(c.deleted) for c in changes)


def _json_key(key: Any) -> str:
    return json.dumps(key, sort_keys=True)


def _bits(value: Mapping[str, Any]) -> int:
    return sum(w << (64 * i) for i, w in enumerate(value.get("w", [])))


def classify(acl: CompiledAcl, packet: Mapping[str, int | None]) -> tuple[int, int | None]:
    """What bpf/acl.c does with the maps 'acl' holds, done in Python: the
    verdict and the deciding rule (None: the default).  'packet' gives
    each field's value, None where the packet has none (ports and flags
    of a later fragment, flags of UDP); a missing state is UNTRACKED."""
    verdict, bit = decide(acl, packet)
    return verdict, acl.rule_at(bit) if bit is not None else None


def decide(acl: CompiledAcl, packet: Mapping[str, int | None]) -> tuple[int, int | None]:
    """classify()'s verdict and the deciding position (None: the default
    policy's entry), from the maps alone: also for maps caught while a
    change is written."""
    anyv = acl.maps["any"][0]["value"]["field"]
    vectors = {e["key"]: _bits(e["value"]) for e in acl.maps["vectors"]}
    result = (1 << acl.max_rules) - 1
    for f in family_fields(acl.family):
        v = packet.get(f.name)
        if f.name == "state" and v is None:
            v = UNTRACKED
        found = 0
        if v is None:
            pass
        elif f.trie_bits:
            v = f.key_value(v)
            best, cls = -1, 0
            for e in acl.maps[f.name]:
                k = e["key"]
                plen = k["prefixlen"]
                start = k[f.key_member]
                if isinstance(start, str):
                    start = int(ipaddress.ip_address(start))
                lo, hi = block(start, plen, f.trie_bits)
                if plen > best and lo <= v <= hi:
                    best, cls = plen, e["value"]
            found = vectors.get(cls, 0)
        else:
            for e in acl.maps[f.name]:
                if e["key"] == v:
                    found = _bits(e["value"])
        result &= found | _bits(anyv[f.index])
    # An entry not written (or zeroed) reads as zeros: verdict 0.
    rules = {e["key"]: e["value"] for e in acl.maps["rules"]}
    if result:
        bit = (result & -result).bit_length() - 1
        return rules.get(bit, {}).get("verdict", 0), bit
    return rules.get(acl.max_rules, {}).get("verdict", 0), None


__all__ = [
    "FIELD",
    "CompiledAcl",
    "MapOp",
    "classify",
    "compile_rules",
    "decide",
    "ordered_changes",
]
