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
from collections.abc import Collection, Mapping, Sequence
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


def allocate(
    ids: Sequence[int],
    previous: Mapping[int, int],
    capacity: int,
    blocked: Collection[int] = frozenset(),
) -> list[int]:
    """Positions (bits) for rules in order: increasing, below 'capacity',
    keeping each rule's previous position (by id) where order allows, and
    putting new rules in the room between their neighbours (moving only
    the rules nearby when there is none).  A 'blocked' position goes to
    no rule but the one that held it before (the rules in force while a
    change is written keep theirs)."""
    n = len(ids)
    if n > capacity:
        raise AclError(f"{n} rules, the ACL holds {capacity}")
    stops = sorted(blocked)
    stop_set = set(stops)
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
            room = hi - lo + 1 - (bisect.bisect_right(stops, hi) - bisect.bisect_left(stops, lo))
            if room >= end - start:
                break
            if start == 0 and end == n:
                raise AclError(
                    f"{n} rules, and {len(blocked)} positions held by the rules in force "
                    f"while the change is written: the ACL holds {capacity} "
                    f"(change fewer rules at once, or build it with a larger ACL_MAX_RULES)"
                )
            if start > 0:
                start -= 1
                pos[start] = None
            if end < n:
                pos[end] = None
                end += 1
                while end < n and pos[end] is None:
                    end += 1
        k = end - start
        free = [q for q in range(lo, hi + 1) if q not in stop_set] if stops else None
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
            at = first - lo + int(t * step)
            pos[start + t] = free[at] if free is not None else lo + at
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
    f: Field,
    rules: Sequence[AclRule],
    positions: Sequence[int],
    extra: Collection[tuple[int, int]] = (),
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
    blocks.  'extra' entries are added whatever the rules: as any entry,
    they hold the rules that allow the values whose longest match they are."""
    covers: dict[int, tuple[bool, list[tuple[int, int]]]] = {}
    for i, r in enumerate(rules):
        s = r.match.sets.get(f.name)
        if s is None:
            continue
        if f.reordered:
            s = IntSet.values(f.size, (f.key_value(v) for v in s))
        pos, neg = s.prefixes(f.trie_bits), s.complement().prefixes(f.trie_bits)
        covers[positions[i]] = (True, pos) if len(pos) <= len(neg) else (False, neg)
    entries = {(0, 0)} | {b for _, blocks in covers.values() for b in blocks} | set(extra)
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
    # The rules in force in the earlier maps keep their positions until the
    # change is written: the rules added or moved take others.  Those the
    # change takes out of force ('retired') keep their bits, read from the
    # earlier maps, so that they still match while it is written.
    forced = in_force(old, max_rules)
    positions = allocate(
        [r.rule_id for r in rules],
        previous_positions(old.get("rules", []), forced),
        max_rules,
        forced,
    )
    retired = _Retired(old, forced - set(positions), family)
    maps: dict[str, list[dict[str, Any]]] = {}
    any_vectors = []
    tries: list[tuple[Field, dict[str, Any], int]] = []
    for f in fields:
        wild = sum(1 << positions[i] for i, r in enumerate(rules) if f.name not in r.match.sets)
        any_vectors.append(_words(wild | retired.any_bits(f), max_rules))
        entries: list[dict[str, Any]] = []
        if f.trie_bits:
            trie = {
                e: b | retired.trie_bits(f, *e)
                for e, b in _trie_entries(f, rules, positions, retired.trie_entries(f)).items()
            }
            if len(trie) > MAX_TRIE_ENTRIES:
                raise AclError(
                    f"field {f.name} needs {len(trie)} trie entries, the map "
                    f"holds {MAX_TRIE_ENTRIES}"
                )
            tries += [
                (f, _trie_key(f, value, plen), b) for (value, plen), b in sorted(trie.items())
            ]
        else:
            per_value = retired.array_bits(f)
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
    # The classes old entries pointed to and new ones do not stay one
    # change more, unreachable: deleted while no entry points to them.
    used = {e["key"] for e in vectors}
    pointed = set(was.values())
    vectors += [
        {"key": c, "value": v} for c, v in old_vectors.items() if c in pointed and c not in used
    ]
    maps["vectors"] = sorted(vectors, key=lambda e: e["key"])
    maps["any"] = [{"key": 0, "value": {"field": any_vectors}}]
    # The change takes effect in one write: config.live switches to the
    # other entry of 'live' (and of the defaults, after the rules); a
    # translation that changes no rule, nor the default, writes nothing.
    track = any("state" in r.match.sets for r in rules)
    slot = live_slot(old)
    same = (
        "live" in old
        and set(positions) == forced
        and retired.entry("rules", max_rules + slot) == {"verdict": default}
        and bool((retired.entry("config", 0) or {}).get("track")) == track
    )
    if not same:
        slot = 1 - slot if old else 0
    rule_entries = {positions[i]: _rule_value(r) for i, r in enumerate(rules)}
    rule_entries |= retired.rule_entries
    rule_entries[max_rules + slot] = {"verdict": default}
    other = retired.entry("rules", max_rules + 1 - slot)
    if other is not None:
        rule_entries[max_rules + 1 - slot] = other
    maps["rules"] = [{"key": k, "value": v} for k, v in sorted(rule_entries.items())]
    lives = {slot: _words(sum(1 << q for q in positions), max_rules)}
    other = retired.entry("live", 1 - slot)
    if other is not None:
        lives[1 - slot] = other
    maps["live"] = [{"key": k, "value": v} for k, v in sorted(lives.items())]
    maps["config"] = [{"key": 0, "value": ({"track": 1} if track else {}) | (
        {"live": slot} if slot else {})}]  # fmt: skip
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


def previous_positions(
    rules_entries: Sequence[Mapping[str, Any]], live: Collection[int] | None = None
) -> dict[int, int]:
    """Rule ids -> positions, from the 'rules' entries of an earlier
    translation (a policy's seeds, or the switch's map); with 'live', of
    the positions in it only (a rule moved has its old position too, out
    of force)."""
    out: dict[int, int] = {}
    for e in rules_entries:
        value = e.get("value")
        if (
            isinstance(value, Mapping)
            and isinstance(value.get("id"), int)
            and value["id"]
            and isinstance(e.get("key"), int)
            and (live is None or e["key"] in live)
        ):
            out[value["id"]] = e["key"]
    return out


def live_slot(maps: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """The entry of 'live' (0 or 1) the maps' config puts in force."""
    config = maps.get("config") or [{}]
    value = config[0].get("value") or {}
    return int(value.get("live", 0)) & 1


def in_force(maps: Mapping[str, Sequence[Mapping[str, Any]]], max_rules: int) -> set[int]:
    """The positions of the rules in force in 'maps': the bits of the
    'live' entry config names (every rule's position, in maps written
    before 'live' was)."""
    if "live" not in maps:
        return {
            e["key"]
            for e in maps.get("rules", [])
            if isinstance(e.get("key"), int) and e["key"] < max_rules
        }
    slot = live_slot(maps)
    bits = next((_bits(e["value"]) for e in maps["live"] if e["key"] == slot), 0)
    return {q for q in range(bits.bit_length()) if bits >> q & 1}


class _Retired:
    """The rules an earlier translation ('old') had in force that the new
    one takes out, at 'positions': their bits in each field, read from the
    old maps, for the new maps to keep until the change is written."""

    def __init__(
        self,
        old: Mapping[str, Sequence[Mapping[str, Any]]],
        positions: Collection[int],
        family: int,
    ) -> None:
        self.old = old
        self.mask = sum(1 << q for q in positions)
        self.vectors = {e["key"]: _bits(e["value"]) for e in old.get("vectors", [])}
        where = set(positions)
        self.rule_entries = {
            e["key"]: e["value"] for e in old.get("rules", []) if e["key"] in where
        }
        self.tries: dict[str, dict[tuple[int, int], int]] = {}
        for f in family_fields(family):
            if f.trie_bits:
                table = {}
                for e in old.get(f.name, []):
                    start = e["key"][f.key_member]
                    if isinstance(start, str):
                        start = int(ipaddress.ip_address(start))
                    table[start, e["key"]["prefixlen"]] = e["value"]
                self.tries[f.name] = table

    def entry(self, name: str, key: int) -> Any:
        """The old value of entry 'key' of map 'name' (None: not there)."""
        return next((e["value"] for e in self.old.get(name, []) if e["key"] == key), None)

    def any_bits(self, f: Field) -> int:
        if not self.mask or "any" not in self.old:
            return 0
        return _bits(self.old["any"][0]["value"]["field"][f.index]) & self.mask

    def trie_bits(self, f: Field, start: int, plen: int) -> int:
        """The retired rules that allow the values under the block: those
        of its longest match in the old trie (its old entry, or one that
        holds it whole)."""
        if not self.mask:
            return 0
        table = self.tries[f.name]
        for length in range(plen, -1, -1):
            c = table.get((block(start, length, f.trie_bits)[0], length))
            if c is not None:
                return self.vectors.get(c, 0) & self.mask
        return 0

    def trie_entries(self, f: Field) -> set[tuple[int, int]]:
        """The old entries the retired rules need: those whose retired
        bits differ from the next shorter entry's."""
        if not self.mask:
            return set()
        out = set()
        for (start, plen), c in self.tries[f.name].items():
            if plen and (self.vectors.get(c, 0) ^ self.trie_bits(f, start, plen - 1)) & self.mask:
                out.add((start, plen))
        return out

    def array_bits(self, f: Field) -> dict[int, int]:
        """Per key of an array field, the retired rules it allows."""
        out: dict[int, int] = {}
        for e in self.old.get(f.name, []) if self.mask else []:
            b = _bits(e["value"]) & self.mask
            if b:
                out[e["key"]] = b
        return out


# The order in which the maps of a change are written (see
# ordered_changes()); a policy lists them in this order.
# (Both families' fields: each program has the maps of one.)
WRITE_ORDER = (
    "rules",
    "vectors",
    *dict.fromkeys(f.name for pair in zip(FIELDS, FIELDS6, strict=True) for f in pair),
    "any",
    "live",
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
    every packet as the 'old' maps do until the last write, config's, and
    as the 'new' ones do from then on, whatever the change (rules added,
    removed, moved, verdicts or the default changed): map by map in
    WRITE_ORDER, each map's writes, then its deletions.

    - The rules in force until config switches 'live' keep their bits
      and positions throughout (compile_rules() keeps those of the rules
      the change takes out, and puts the new ones elsewhere), and every
      write or deletion before it leaves what they match unchanged: a
      rule's verdict is written before its bits; a vector is written to a
      class no trie entry points to (compile_rules() gives a changed
      vector a new class) before the entries that then point to it; a
      trie entry deleted is one no rule in force needs (its parent's
      vector says the same of them); a class deleted is one no entry has
      pointed to since the change before.
    - Config's one write switches to the other entry of 'live' and of the
      default verdicts, written before with the new rule set, whose bits
      are all in place by then.

    This is also the order the controller applies a reloaded policy's
    seeds in (okopy.controller.reconcile): map by map in the policy's
    order, writes in the order the policy lists them, deletions in the
    reverse of the previous policy's."""
    changes = map_changes(old, new)
    order = [*WRITE_ORDER, *sorted(changes.keys() - set(WRITE_ORDER))]
    ops = []
    for name in order:
        if name in changes:
            ops += [MapOp(name, e["key"], e["value"]) for e in changes[name].written]
            ops += [MapOp(name, key, None) for key in reversed(changes[name].deleted)]
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
    return decide_all(acl, [packet])[0]


def decide_all(
    acl: CompiledAcl, packets: Sequence[Mapping[str, int | None]]
) -> list[tuple[int, int | None]]:
    """decide() for each of 'packets', reading the maps once."""
    anyv = [_bits(v) for v in acl.maps["any"][0]["value"]["field"]]
    vectors = {e["key"]: _bits(e["value"]) for e in acl.maps["vectors"]}
    slot = live_slot(acl.maps)
    lives = {e["key"]: _bits(e["value"]) for e in acl.maps.get("live", [])}
    in_force = lives.get(slot, 0) if "live" in acl.maps else (1 << acl.max_rules) - 1
    # An entry not written (or zeroed) reads as zeros: verdict 0.
    rules = {e["key"]: e["value"] for e in acl.maps["rules"]}
    fields = family_fields(acl.family)
    tables: dict[str, Any] = {}
    for f in fields:
        if f.trie_bits:
            trie = []
            for e in acl.maps[f.name]:
                start = e["key"][f.key_member]
                if isinstance(start, str):
                    start = int(ipaddress.ip_address(start))
                plen = e["key"]["prefixlen"]
                trie.append((*block(start, plen, f.trie_bits), plen, e["value"]))
            tables[f.name] = trie
        else:
            tables[f.name] = {e["key"]: _bits(e["value"]) for e in acl.maps[f.name]}
    out: list[tuple[int, int | None]] = []
    for packet in packets:
        result = in_force
        for f in fields:
            v = packet.get(f.name)
            if f.name == "state" and v is None:
                v = UNTRACKED
            found = 0
            if v is None:
                pass
            elif f.trie_bits:
                v = f.key_value(v)
                best, cls = -1, 0
                for lo, hi, plen, c in tables[f.name]:
                    if plen > best and lo <= v <= hi:
                        best, cls = plen, c
                found = vectors.get(cls, 0)
            else:
                found = tables[f.name].get(v, 0)
            result &= found | anyv[f.index]
        if result:
            bit = (result & -result).bit_length() - 1
            out.append((rules.get(bit, {}).get("verdict", 0), bit))
        else:
            out.append((rules.get(acl.max_rules + slot, {}).get("verdict", 0), None))
    return out


__all__ = [
    "FIELD",
    "CompiledAcl",
    "MapOp",
    "classify",
    "compile_rules",
    "decide",
    "decide_all",
    "ordered_changes",
]
