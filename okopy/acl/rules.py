"""ACL rules: what bpf/acl.c (IPv4) and bpf/acl6.c (IPv6) classify on, as
sets of values per field.

A rule is a conjunction: for each field, the set of values it allows (or
any value).  Rules translated from iptables may need a disjunction (a
`--ports` match, a negated pair, the rules after a RETURN): those become
several rules with the same verdict, one after another, which first-match
order treats as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from okopy.acl.sets import IntSet


class AclError(ValueError):
    """A rule set that cannot be classified as asked."""


@dataclass(frozen=True)
class Field:
    """One field of bpf/acl.c: its 'enum acl_field' index, the universe of
    its values, and the map it is looked up in."""

    name: str
    index: int
    size: int
    # Key bits of the LPM trie the field is looked up in; 0 for an array
    # indexed by the value.
    trie_bits: int
    # The trie key's value member (struct acl_key32/_addr/16/8).
    key_member: str = "value"
    # The flags trie keys a value with its bits reordered (flags_key()).
    reordered: bool = False

    def key_value(self, value: int) -> int:
        """A value as the field's trie keys it."""
        return flags_key(value) if self.reordered else value


_IN_PORT = Field("in_port", 0, 1 << 32, 32)
_L4 = (
    Field("proto", 3, 256, 0),
    Field("sport", 4, 1 << 16, 16),
    Field("dport", 5, 1 << 16, 16),
    Field("flags", 6, 256, 8, reordered=True),
    Field("state", 7, 5, 0),
)
# bpf/acl.c (IPv4).
FIELDS: tuple[Field, ...] = (
    _IN_PORT,
    Field("src", 1, 1 << 32, 32, "addr"),
    Field("dst", 2, 1 << 32, 32, "addr"),
    *_L4,
)
# bpf/acl6.c (IPv6): the same fields, but for the addresses, whose tries
# are 'src6' and 'dst6'.  'proto' is the upper-layer header there.
FIELDS6: tuple[Field, ...] = (
    _IN_PORT,
    Field("src6", 1, 1 << 128, 128, "addr"),
    Field("dst6", 2, 1 << 128, 128, "addr"),
    *_L4,
)
FAMILIES = {4: FIELDS, 6: FIELDS6}
FIELD = {f.name: f for fields in FAMILIES.values() for f in fields}
# The program that classifies each family, in the checkout.
SOURCES = {4: "bpf/acl.c", 6: "bpf/acl6.c"}


def family_fields(family: int) -> tuple[Field, ...]:
    """The fields of the program classifying address family 'family'."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise AclError(f"address family {family}: 4 (IPv4) or 6 (IPv6)") from None


# TCP flag bits, least significant first (FIN SYN RST PSH ACK URG ECE
# CWR), in the order bpf/acl.c's flags trie keys them, most significant
# first: the usual masks become prefixes (--syn: SYN ACK RST FIN, /4).
_FLAG_ORDER = (0x02, 0x10, 0x04, 0x01, 0x08, 0x20, 0x40, 0x80)


def flags_key(flags: int) -> int:
    """A TCP flags byte as bpf/acl.c's flags_key() reorders it."""
    out = 0
    for i, bit in enumerate(_FLAG_ORDER):
        if flags & bit:
            out |= 0x80 >> i
    return out


# enum acl_state
STATES = {"INVALID": 0, "NEW": 1, "ESTABLISHED": 2, "RELATED": 3, "UNTRACKED": 4}

# Verdicts the ACL returns (XDP_DROP, XDP_PASS, ACL_VERDICT_REJECT).
VERDICT_DROP = 1
VERDICT_PASS = 2
VERDICT_REJECT = 16


@dataclass(frozen=True)
class Match:
    """Allowed values per field (a field left out allows every value)."""

    sets: Mapping[str, IntSet] = field(default_factory=dict)

    @classmethod
    def of(cls, **sets: IntSet) -> Match:
        for name, s in sets.items():
            f = FIELD.get(name)
            if f is None:
                raise AclError(f"no ACL field {name!r}")
            if s.size != f.size:
                raise AclError(f"field {name}: a set over {s.size} values, not {f.size}")
        return cls({k: v for k, v in sets.items() if not v.full})

    def allowed(self, name: str) -> IntSet:
        return self.sets.get(name) or IntSet.everything(FIELD[name].size)

    @property
    def empty(self) -> bool:
        """Whether no packet matches."""
        return any(s.empty for s in self.sets.values())

    def and_(self, other: Match) -> Match:
        out = dict(self.sets)
        for name, s in other.sets.items():
            out[name] = out[name].intersect(s) if name in out else s
        return Match({k: v for k, v in out.items() if not v.full})

    def negate(self) -> list[Match]:
        """The packets this does not match, as alternatives: one per field
        it constrains, each allowing that field's complement."""
        return [
            Match({name: s.complement()})
            for name, s in self.sets.items()
            if not s.complement().empty
        ]

    def matches(self, packet: Mapping[str, int | None]) -> bool:
        """Whether a packet's field values (None: the packet has no such
        field, e.g. no ports in a later fragment) are all allowed."""
        for name, s in self.sets.items():
            v = packet.get(name)
            if v is None or v not in s:
                return False
        return True

    def key(self) -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
        return tuple(sorted((k, v.spans) for k, v in self.sets.items()))


def conjoin(a: Sequence[Match], b: Sequence[Match], limit: int) -> list[Match]:
    """(a1 or a2 ...) and (b1 or b2 ...), as alternatives, without the
    empty ones and repeats; AclError past 'limit' alternatives."""
    out: list[Match] = []
    seen = set()
    for x in a:
        for y in b:
            m = x.and_(y)
            if m.empty or m.key() in seen:
                continue
            seen.add(m.key())
            out.append(m)
            if len(out) > limit:
                raise AclError(f"more than {limit} alternatives")
    return out


def negate_any(alternatives: Sequence[Match], limit: int) -> list[Match]:
    """not (a1 or a2 ...) = (not a1) and (not a2) ..., as alternatives."""
    out: list[Match] = [Match()]
    for m in alternatives:
        out = conjoin(out, m.negate(), limit)
    return out


@dataclass(frozen=True)
class AclRule:
    """One rule: a match, a verdict, where it came from (for people: the
    source line, shown next to its entries, and its number), and what
    identifies it from one translation to the next ('key': the rule's text
    and the jumps that reach it, not its line number, so that editing
    other rules leaves it in place; the origin when not given)."""

    match: Match
    verdict: int
    origin: str = ""
    line: int = 0
    key: str = ""

    @property
    def rule_id(self) -> int:
        """A 63-bit number for 'key' (or 'origin'), the verdict and what
        the rule matches, kept in the rule's map entry so that the next
        translation finds the rule's position.  A rule whose text stays
        but whose match or verdict changes (a port numbered otherwise, a
        chain's --verdict) is another rule: it takes another position,
        and the change takes effect in one write, as any other."""
        matched = ";".join(
            f"{name}={s.spans}" for name, s in sorted(self.match.sets.items()) if not s.full
        )
        text = f"{self.key or self.origin}\n{self.verdict}\n{matched}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def first_match(
    rules: Iterable[AclRule], default: int, packet: Mapping[str, int | None]
) -> tuple[int, int | None]:
    """The verdict and the index of the rule that decides 'packet', by
    reading the rules in order (the reference bpf/acl.c must agree with)."""
    for i, r in enumerate(rules):
        if r.match.matches(packet):
            return r.verdict, i
    return default, None
