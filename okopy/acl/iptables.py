"""iptables-save (and ip6tables-save) -> ACL rules in first-match order.

Reads the `filter` table of an `iptables-save` dump (IPv4, for
bpf/acl.c) or an `ip6tables-save` dump (IPv6, for bpf/acl6.c), parses each rule of
one built-in chain (FORWARD by default) and the user chains it reaches,
and flattens jumps, gotos and returns into one ordered list:

- a jump to chain C puts C's rules in its place, each also requiring the
  jump's match; falling off C's end continues after the jump;
- a RETURN (and a goto, whose chain returns to the caller's caller) makes
  every later rule of its chain also require "not the RETURN's match";
  a negated conjunction is a disjunction, so such a rule becomes one ACL
  rule per field the RETURN looked at (same verdict, adjacent: first match
  reads them as one);
- ACCEPT, DROP and REJECT end the walk as in iptables; LOG and NFLOG do
  not change a packet's fate and are left out (and listed); the chain's
  policy is the default.

Everything that cannot be translated exactly is refused with its line
and the option named; with skip_unsupported the rule is left out and
listed instead.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from okopy.acl.rules import (
    FIELD,
    STATES,
    VERDICT_DROP,
    VERDICT_PASS,
    VERDICT_REJECT,
    AclError,
    AclRule,
    Match,
    conjoin,
    negate_any,
)
from okopy.acl.sets import IntSet

BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
TERMINAL = {"ACCEPT": VERDICT_PASS, "DROP": VERDICT_DROP, "REJECT": VERDICT_REJECT}
# Targets that leave a packet's fate alone.
PASSIVE_TARGETS = ("LOG", "NFLOG")
# Alternatives one rule may expand to.
EXPANSION_LIMIT = 4096

PROTOCOLS = {
    "all": 0,
    "icmp": 1,
    "igmp": 2,
    "ipip": 4,
    "ipencap": 4,
    "tcp": 6,
    "egp": 8,
    "udp": 17,
    "dccp": 33,
    "ipv6": 41,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ospf": 89,
    "pim": 103,
    "vrrp": 112,
    "l2tp": 115,
    "sctp": 132,
    "udplite": 136,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "mh": 135,
    "ipv6-mh": 135,
}
# ICMP's protocol number in each family.
ICMP_PROTOCOL = {4: 1, 6: 58}
TCP_FLAGS = {
    "FIN": 0x01,
    "SYN": 0x02,
    "RST": 0x04,
    "PSH": 0x08,
    "ACK": 0x10,
    "URG": 0x20,
    "ECE": 0x40,
    "CWR": 0x80,
    "ALL": 0x3F,
    "NONE": 0,
}

# iptables' ICMP type names: (type, code) or (type, None) for every code.
ICMP_TYPES: dict[str, tuple[int, int | None]] = {
    "echo-reply": (0, None),
    "pong": (0, None),
    "destination-unreachable": (3, None),
    "network-unreachable": (3, 0),
    "host-unreachable": (3, 1),
    "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3),
    "fragmentation-needed": (3, 4),
    "source-route-failed": (3, 5),
    "network-unknown": (3, 6),
    "host-unknown": (3, 7),
    "network-prohibited": (3, 9),
    "host-prohibited": (3, 10),
    "TOS-network-unreachable": (3, 11),
    "TOS-host-unreachable": (3, 12),
    "communication-prohibited": (3, 13),
    "host-precedence-violation": (3, 14),
    "precedence-cutoff": (3, 15),
    "source-quench": (4, None),
    "redirect": (5, None),
    "network-redirect": (5, 0),
    "host-redirect": (5, 1),
    "TOS-network-redirect": (5, 2),
    "TOS-host-redirect": (5, 3),
    "echo-request": (8, None),
    "ping": (8, None),
    "router-advertisement": (9, None),
    "router-solicitation": (10, None),
    "time-exceeded": (11, None),
    "ttl-exceeded": (11, None),
    "ttl-zero-during-transit": (11, 0),
    "ttl-zero-during-reassembly": (11, 1),
    "parameter-problem": (12, None),
    "ip-header-bad": (12, 0),
    "required-option-missing": (12, 1),
    "timestamp-request": (13, None),
    "timestamp-reply": (14, None),
    "address-mask-request": (17, None),
    "address-mask-reply": (18, None),
}

# ip6tables' ICMPv6 type names (libxt_icmp6).
ICMPV6_TYPES: dict[str, tuple[int, int | None]] = {
    "destination-unreachable": (1, None),
    "no-route": (1, 0),
    "communication-prohibited": (1, 1),
    "beyond-scope": (1, 2),
    "address-unreachable": (1, 3),
    "port-unreachable": (1, 4),
    "failed-policy": (1, 5),
    "reject-route": (1, 6),
    "packet-too-big": (2, None),
    "time-exceeded": (3, None),
    "ttl-exceeded": (3, None),
    "ttl-zero-during-transit": (3, 0),
    "ttl-zero-during-reassembly": (3, 1),
    "parameter-problem": (4, None),
    "bad-header": (4, 0),
    "unknown-header-type": (4, 1),
    "unknown-option": (4, 2),
    "echo-request": (128, None),
    "ping": (128, None),
    "echo-reply": (129, None),
    "pong": (129, None),
    "router-solicitation": (133, None),
    "router-advertisement": (134, None),
    "neighbour-solicitation": (135, None),
    "neighbor-solicitation": (135, None),
    "neighbour-advertisement": (136, None),
    "neighbor-advertisement": (136, None),
    "redirect": (137, None),
}

# Matches (-m NAME) whose options are translated, and their options.
MODULE_OPTIONS = {
    "tcp": {"--sport", "--source-port", "--dport", "--destination-port", "--tcp-flags", "--syn"},
    "udp": {"--sport", "--source-port", "--dport", "--destination-port"},
    "icmp": {"--icmp-type"},
    "icmp6": {"--icmpv6-type"},
    "multiport": {"--sports", "--source-ports", "--dports", "--destination-ports", "--ports"},
    "state": {"--state"},
    "conntrack": {"--ctstate"},
    "comment": {"--comment"},
    "iprange": {"--src-range", "--dst-range"},
}


class IptablesError(AclError):
    """What cannot be translated, one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class _Unsupported(Exception):
    """What the ACL cannot express: refused, or with --skip-unsupported
    left out and listed."""

    def __init__(self, what: str, why: str = "is not supported") -> None:
        super().__init__(f"{what} {why}")


@dataclass
class IptRule:
    line: int
    text: str
    alternatives: list[Match]
    target: str | None  # None: no -j (counts only)
    goto: bool = False
    comment: str = ""


@dataclass
class Ruleset:
    """The filter table: chains in order, their policies (None for user
    chains), and what was left out."""

    chains: dict[str, list[IptRule]] = field(default_factory=dict)
    policies: dict[str, str | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family: int = 4  # 6: an ip6tables-save dump, for bpf/acl6.c


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        try:
            return socket.getservbyname(text)
        except OSError:
            raise AclError(f"{text!r} is not a port") from None
    return int(text)


def _port_range(text: str) -> tuple[int, int]:
    if ":" in text:
        lo, _, hi = text.partition(":")
        a = _port(lo) if lo else 0
        b = _port(hi) if hi else 65535
        if a > b:
            raise AclError(f"port range {text!r} runs backwards")
        return a, b
    p = _port(text)
    return p, p


# The source and destination address fields of each family.
ADDRESS_FIELDS = {4: ("src", "dst"), 6: ("src6", "dst6")}
DUMP_NAMES = {4: "iptables-save", 6: "ip6tables-save"}
_ADDRESS_OPTIONS = r"-s|-d|--source|--destination|--src|--dst|--src-range|--dst-range"


def detect_family(text: str) -> int:
    """6 for an ip6tables-save dump, 4 for an iptables-save one: as its
    header says, or without one, as its addresses are."""
    for raw in text.splitlines():
        header = re.match(r"#.*\b(ip6?)tables(-\w+)?-save", raw.strip())
        if header:
            return 6 if header.group(1) == "ip6" else 4
    # An IPv4 address has no ':'.
    return 6 if re.search(rf"(^|\s)({_ADDRESS_OPTIONS})\s+\S*:", text, re.MULTILINE) else 4


def _address(text: str, family: int) -> IntSet:
    """An address or network of 'family' (a.b.c.d[/len or /mask], or
    IPv6's x:y::z[/len]) as a set."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AclError(
            f"{text!r} is not an IPv{family} address or network (host names and "
            f"non-contiguous masks are not translated)"
        ) from None
    if net.version != family:
        raise AclError(
            f"{text!r} is an IPv{net.version} address, in an {DUMP_NAMES[family]} dump "
            f"(IPv{family}): translate each family's dump on its own"
        )
    lo = int(net.network_address)
    return IntSet.of(1 << net.max_prefixlen, [(lo, lo + net.num_addresses - 1)])


def _protocol(text: str) -> IntSet | None:
    name = text.lower()
    if name.isdigit():
        n = int(name)
        if n > 255:
            raise AclError(f"protocol {text!r} is out of range")
    elif name in PROTOCOLS:
        n = PROTOCOLS[name]
    else:
        try:
            n = socket.getprotobyname(name)
        except OSError:
            raise AclError(f"unknown protocol {text!r}") from None
    return None if n == 0 else IntSet.values(256, [n])


def _flag_bits(text: str) -> int:
    bits = 0
    for name in text.split(","):
        if name.upper() in TCP_FLAGS:
            bits |= TCP_FLAGS[name.upper()]
        else:
            try:
                bits |= int(name, 0)
            except ValueError:
                raise AclError(f"unknown TCP flag {name!r}") from None
    return bits


def _tcp_flags(mask: int, comp: int) -> IntSet:
    return IntSet.values(256, [b for b in range(256) if b & mask == comp])


def _icmp_type(text: str, names: Mapping[str, tuple[int, int | None]], what: str) -> Match | None:
    """An ICMP (or ICMPv6: 'what') type[/code] or name of 'names' as the
    ACL's ports: the type as the source port, the code as the
    destination's."""
    if text == "any":
        return None
    if text in names:
        t, c = names[text]
    else:
        head, _, tail = text.partition("/")
        try:
            t = int(head)
            c = int(tail) if tail else None
        except ValueError:
            raise AclError(f"unknown {what} type {text!r}") from None
        if t > 255 or (c is not None and c > 255):
            raise AclError(f"{what} type {text!r} is out of range")
    sets = {"sport": IntSet.values(1 << 16, [t])}
    if c is not None:
        sets["dport"] = IntSet.values(1 << 16, [c])
    return Match.of(**sets)


def _states(text: str) -> IntSet:
    values = []
    for name in text.split(","):
        if name not in STATES:
            raise _Unsupported(f"connection state {name!r}")
        values.append(STATES[name])
    return IntSet.values(FIELD["state"].size, values)


def _interfaces(text: str, ports: Mapping[str, int]) -> IntSet:
    if text.endswith("+"):
        chosen = [p for name, p in ports.items() if name.startswith(text[:-1])]
        if not chosen:
            raise _Unsupported(f"interface {text!r}", "matches no port: give --port NAME=NUMBER")
    elif text in ports:
        chosen = [ports[text]]
    else:
        # The switch may have no such port (lo): a rule on it can be left
        # out with --skip-unsupported, and is listed.
        raise _Unsupported(f"interface {text!r}", f"has no port number: give --port {text}=NUMBER")
    return IntSet.values(1 << 32, chosen)


class _RuleParser:
    """One '-A CHAIN ...' line into alternatives, a target and a comment."""

    def __init__(self, tokens: list[str], ports: Mapping[str, int], family: int = 4) -> None:
        self.tokens = tokens
        self.ports = ports
        self.family = family
        self.pos = 0
        self.alternatives: list[Match] = [Match()]
        self.protocol: IntSet | None = None
        self.modules: set[str] = set()
        self.target: str | None = None
        self.goto = False
        self.comment = ""
        self.target_options: list[str] = []

    def take(self, option: str) -> str:
        if self.pos >= len(self.tokens):
            raise AclError(f"{option} needs a value")
        v = self.tokens[self.pos]
        self.pos += 1
        return v

    def require(self, option: str, *alts: Match | None, negate: bool = False) -> None:
        present = [m for m in alts if m is not None]
        if not present:
            if negate:
                self.alternatives = []
            return
        if negate:
            present = negate_any(present, EXPANSION_LIMIT)
        self.alternatives = conjoin(self.alternatives, present, EXPANSION_LIMIT)

    def need_l4(self, option: str, allowed: tuple[int, ...]) -> int:
        proto = self.protocol
        if proto is None or proto.count() != 1 or next(iter(proto)) not in allowed:
            names = " or ".join(
                f"-p {n}" for n, v in PROTOCOLS.items() if v in allowed and n != "ipencap"
            )
            raise AclError(f"{option} needs {names}")
        return next(iter(proto))

    def parse(self) -> None:
        negate = False
        while self.pos < len(self.tokens):
            opt = self.tokens[self.pos]
            self.pos += 1
            if opt == "!":
                if negate:
                    raise AclError("'!' twice")
                negate = True
                continue
            if self.target is not None and opt.startswith("--"):
                # Options of the target (REJECT's --reject-with, LOG's
                # --log-prefix): they do not change the packet's fate here.
                self.target_options.append(opt)
                if self.pos < len(self.tokens) and not self.tokens[self.pos].startswith("-"):
                    self.target_options.append(self.take(opt))
                continue
            self.option(opt, negate)
            negate = False
        if negate:
            raise AclError("'!' with nothing after it")

    def option(self, opt: str, negate: bool) -> None:
        if opt in ("-s", "--source", "--src", "-d", "--destination", "--dst"):
            src, dst = ADDRESS_FIELDS[self.family]
            name = src if opt in ("-s", "--source", "--src") else dst
            parts = self.take(opt).split(",")
            if negate and len(parts) > 1:
                raise AclError(f"! {opt} takes one address")
            s = IntSet.of(FIELD[name].size, [])
            for p in parts:
                s = s.union(_address(p, self.family))
            self.require(opt, Match.of(**{name: s}), negate=negate)
        elif opt in ("-p", "--protocol"):
            proto = _protocol(self.take(opt))
            if proto is None:
                if negate:
                    self.alternatives = []
                return
            self.protocol = proto.complement() if negate else proto
            self.require(opt, Match.of(proto=proto), negate=negate)
        elif opt in ("-i", "--in-interface"):
            s = _interfaces(self.take(opt), self.ports)
            self.require(opt, Match.of(in_port=s), negate=negate)
        elif opt in ("-m", "--match"):
            module = self.take(opt)
            if module not in MODULE_OPTIONS:
                raise _Unsupported(f"match -m {module}")
            self.modules.add(module)
        elif opt in ("-j", "--jump", "-g", "--goto"):
            if negate:
                raise AclError(f"! {opt}")
            self.target = self.take(opt)
            self.goto = opt in ("-g", "--goto")
        elif opt in ("-c", "--set-counters"):
            self.take(opt)
            self.take(opt)
        elif opt in ("-o", "--out-interface"):
            raise _Unsupported(f"{opt} (a switch filters where packets come in)")
        elif opt in ("-f", "--fragment"):
            raise _Unsupported(f"{opt}")
        elif opt.startswith("--"):
            self.module_option(opt, negate)
        else:
            raise _Unsupported(f"option {opt}")

    def module_option(self, opt: str, negate: bool) -> None:
        owner = [m for m in MODULE_OPTIONS if opt in MODULE_OPTIONS[m]]
        implicit = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}
        if not owner:
            raise _Unsupported(f"option {opt}")
        if not any(m in self.modules for m in owner):
            # iptables loads tcp, udp and icmp on their own after -p.
            p = next(iter(self.protocol)) if self.protocol and self.protocol.count() == 1 else None
            if p is None or implicit.get(p) not in owner:
                raise AclError(f"{opt} needs -m {owner[0]}")
        if opt in ("--sport", "--source-port", "--dport", "--destination-port"):
            self.need_l4(opt, (6, 17))
            name = "sport" if opt in ("--sport", "--source-port") else "dport"
            lo, hi = _port_range(self.take(opt))
            self.require(opt, Match.of(**{name: IntSet.of(1 << 16, [(lo, hi)])}), negate=negate)
        elif opt in ("--sports", "--source-ports", "--dports", "--destination-ports", "--ports"):
            self.need_l4(opt, (6, 17, 33, 132, 136))
            spans = [_port_range(p) for p in self.take(opt).split(",")]
            if len(spans) > 15:
                raise AclError(f"{opt} takes at most 15 ports")
            s = IntSet.of(1 << 16, spans)
            if opt == "--ports":
                # Either port: two alternatives.
                self.require(opt, Match.of(sport=s), Match.of(dport=s), negate=negate)
            else:
                name = "sport" if opt in ("--sports", "--source-ports") else "dport"
                self.require(opt, Match.of(**{name: s}), negate=negate)
        elif opt == "--tcp-flags":
            self.need_l4(opt, (6,))
            mask = _flag_bits(self.take(opt))
            comp = _flag_bits(self.take(opt))
            self.require(opt, Match.of(flags=_tcp_flags(mask, comp)), negate=negate)
        elif opt == "--syn":
            self.need_l4(opt, (6,))
            self.require(opt, Match.of(flags=_tcp_flags(0x17, 0x02)), negate=negate)
        elif opt == "--icmp-type":
            self.need_l4(opt, (1,))
            self.require(opt, _icmp_type(self.take(opt), ICMP_TYPES, "ICMP"), negate=negate)
        elif opt == "--icmpv6-type":
            self.need_l4(opt, (58,))
            self.require(opt, _icmp_type(self.take(opt), ICMPV6_TYPES, "ICMPv6"), negate=negate)
        elif opt in ("--state", "--ctstate"):
            self.require(opt, Match.of(state=_states(self.take(opt))), negate=negate)
        elif opt == "--comment":
            self.comment = self.take(opt)
        elif opt in ("--src-range", "--dst-range"):
            first, _, last = self.take(opt).partition("-")
            a, b = _address(first, self.family), _address(last or first, self.family)
            s = IntSet.of(a.size, [(a.spans[0][0], b.spans[0][0])])
            if s.empty:
                raise AclError(f"{opt} runs backwards")
            name = ADDRESS_FIELDS[self.family][0 if opt == "--src-range" else 1]
            self.require(opt, Match.of(**{name: s}), negate=negate)


@dataclass
class _Unread:
    """A rule that could not be translated, and what to say of it: left
    for the end of the table, when its chain's reach and neighbours are
    known."""

    chain: str
    index: int  # where it stood in its chain, among the rules read
    line: int
    what: str
    unsupported: bool  # refused as unsupported (skippable), not malformed
    target: str | None  # its -j or -g, as written


def _target_of(tokens: Sequence[str]) -> str | None:
    """The -j or -g target of a rule's tokens, without reading the rest."""
    for i, t in enumerate(tokens[:-1]):
        if t in ("-j", "--jump", "-g", "--goto") and (i == 0 or not tokens[i - 1].startswith("--")):
            return tokens[i + 1]
    return None


def _reach(rs: Ruleset, unread: Sequence[_Unread], chain: str) -> set[str]:
    """The chains a packet entering 'chain' may meet."""
    jumps: dict[str, set[str]] = {name: set() for name in rs.chains}
    for name, rules in rs.chains.items():
        jumps[name] |= {r.target for r in rules if r.target in rs.chains}
    for rule in unread:
        if rule.target in rs.chains:
            jumps[rule.chain].add(rule.target)
    seen = {chain}
    todo = [chain]
    while todo:
        for nxt in jumps.get(todo.pop(), set()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _judge_unread(
    rs: Ruleset, unread: Sequence[_Unread], chain: str | None, skip_unsupported: bool
) -> list[str]:
    """Sorts the rules not translated into notes (they cannot change a
    packet's fate), skipped ones and problems (returned).  Leniency only
    for rules iptables-save writes that the ACL cannot read: a malformed
    rule is refused wherever it is."""
    reached = _reach(rs, unread, chain) if chain in rs.chains else None
    problems = []

    def only_passive_after(u: _Unread) -> bool:
        later = [r.target for r in rs.chains[u.chain][u.index :]]
        later += [v.target for v in unread if v.chain == u.chain and v.line > u.line]
        return all(t in PASSIVE_TARGETS or t is None for t in later)

    for u in unread:
        if u.unsupported and (u.target in PASSIVE_TARGETS or u.target is None):
            rs.notes.append(f"{u.what}: does not decide a packet's fate, not translated")
        elif u.unsupported and u.target == "RETURN" and only_passive_after(u):
            rs.notes.append(
                f"{u.what}: a RETURN with nothing after it that decides a packet's fate, "
                f"not translated"
            )
        elif u.unsupported and reached is not None and u.chain not in reached:
            rs.notes.append(
                f"{u.what}: in chain {u.chain}, which {chain} never reaches, not translated"
            )
        elif u.unsupported and skip_unsupported:
            rs.skipped.append(u.what)
        else:
            problems.append(u.what)
    return problems


def parse_save(
    text: str,
    ports: Mapping[str, int] | None = None,
    skip_unsupported: bool = False,
    family: int | None = None,
    chain: str | None = None,
) -> Ruleset:
    """An iptables-save or ip6tables-save dump -> its filter table, of
    'family' (by default, detect_family()'s).  Raises IptablesError naming
    every line it cannot read or translate, but for rules that cannot
    change a packet's fate, which it lists in the notes: a rule it cannot
    read whose target is LOG or NFLOG (or none); a RETURN with only such
    rules after it in its chain; with 'chain', a rule of a chain that a
    packet entering 'chain' never meets."""
    ports = ports or {}
    found = detect_family(text)
    if family is not None and family != found:
        raise IptablesError([f"an IPv{found} dump ({DUMP_NAMES[found]}), not IPv{family} as asked"])
    rs = Ruleset(family=found)
    entry = chain  # 'chain' is each rule's below
    problems: list[str] = []
    unread: list[_Unread] = []
    table: str | None = None
    other_rules: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            problems.append(f"line {n}: {line!r} is outside a table (*filter ... COMMIT)")
            continue
        if table != "filter":
            if not line.startswith(":"):
                other_rules[table] = other_rules.get(table, 0) + 1
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                problems.append(f"line {n}: chain declaration {line!r} needs a policy")
                continue
            name, policy = parts[0], parts[1]
            if policy not in ("ACCEPT", "DROP", "-"):
                problems.append(f"line {n}: chain {name}: policy {policy!r} is not ACCEPT or DROP")
                continue
            rs.chains.setdefault(name, [])
            rs.policies[name] = None if policy == "-" else policy
            continue
        if line.startswith("["):
            # iptables-save -c: "[packets:bytes] -A ..."
            line = line.split("]", 1)[-1].strip()
        try:
            tokens = shlex.split(line)
        except ValueError as e:
            problems.append(f"line {n}: {e}")
            continue
        if len(tokens) < 2 or tokens[0] not in ("-A", "--append"):
            problems.append(f"line {n}: expected '-A CHAIN ...', got {line!r}")
            continue
        chain = tokens[1]
        if chain not in rs.chains:
            problems.append(f"line {n}: chain {chain} is not declared (':{chain} ...')")
            continue
        p = _RuleParser(tokens[2:], ports, rs.family)
        here = len(rs.chains[chain])
        try:
            p.parse()
        except _Unsupported as e:
            unread.append(_Unread(chain, here, n, f"line {n}: {e}: {line}", True,
                                  _target_of(tokens[2:])))  # fmt: skip
            continue
        except AclError as e:
            unread.append(_Unread(chain, here, n, f"line {n}: {e}: {line}", False,
                                  _target_of(tokens[2:])))  # fmt: skip
            continue
        target = p.target
        if (
            target is not None
            and target not in TERMINAL
            and target != "RETURN"
            and target not in PASSIVE_TARGETS
            and target not in rs.chains
        ):
            if target.isupper():
                what = f"line {n}: target {target} is not supported: {line}"
                unread.append(_Unread(chain, here, n, what, True, target))
            else:
                what = f"line {n}: target {target} is not a chain of the table: {line}"
                unread.append(_Unread(chain, here, n, what, False, target))
            continue
        if target in PASSIVE_TARGETS or target is None:
            rs.notes.append(
                f"line {n}: {target or 'no target'}: does not decide a "
                f"packet's fate, not translated"
            )
        rs.chains[chain].append(IptRule(n, line, p.alternatives, target, p.goto, p.comment))
    problems += _judge_unread(rs, unread, entry, skip_unsupported)
    for t, count in sorted(other_rules.items()):
        what = f"table {t}: {count} rule(s) not translated (only the filter table is)"
        if skip_unsupported:
            rs.skipped.append(what)
        else:
            problems.append(what + "; give --skip-unsupported to go on without them")
    if not rs.chains and not problems:
        problems.append("no filter table (*filter ... COMMIT) in the input")
    if problems:
        raise IptablesError(problems)
    return rs


def flatten(
    rs: Ruleset, chain: str = "FORWARD", verdicts: Mapping[str, int] | None = None
) -> tuple[list[AclRule], int]:
    """The rules a packet entering 'chain' meets, in first-match order, and
    the chain policy's verdict.  A jump (or goto) to a user chain that
    'verdicts' names ends there with that verdict, for OpenFlow to act on,
    instead of going through the chain's rules."""
    verdicts = verdicts or {}
    if chain not in rs.chains:
        raise IptablesError([f"chain {chain} is not in the filter table"])
    bad = [
        f"--verdict {name}: a built-in chain, not a user chain"
        if rs.policies.get(name) is not None
        else f"--verdict {name}: the filter table has no user chain {name}"
        for name in verdicts
        if name not in rs.chains or rs.policies.get(name) is not None
    ]
    if bad:
        raise IptablesError(bad)
    policy = rs.policies.get(chain)
    if policy is None:
        raise IptablesError(
            [
                f"chain {chain} is a user chain: translate a built-in chain "
                f"({', '.join(BUILTIN_CHAINS)})"
            ]
        )
    out: list[AclRule] = []
    problems: list[str] = []
    seen: dict[str, int] = {}

    def walk(name: str, cond: list[Match], stack: tuple[str, ...], path: str) -> None:
        if name in stack:
            problems.append(f"chain {name} jumps back to itself via {' -> '.join(stack)}")
            return
        for r in rs.chains[name]:
            if not cond:
                return
            try:
                eff = conjoin(cond, r.alternatives, EXPANSION_LIMIT)
                if r.target is not None and (r.target in TERMINAL or r.target in verdicts):
                    origin = f"line {r.line}: {r.text}"
                    # What identifies the rule: its text and the jumps to it;
                    # identical ones are told apart by their order.
                    base = f"{path} {r.text}"
                    seen[base] = seen.get(base, 0) + 1
                    verdict = TERMINAL.get(r.target) or verdicts[r.target]
                    out.extend(
                        AclRule(m, verdict, origin, r.line, f"{base} #{seen[base]}.{k}")
                        for k, m in enumerate(eff)
                    )
                elif r.target == "RETURN":
                    cond = conjoin(
                        cond, negate_any(r.alternatives, EXPANSION_LIMIT), EXPANSION_LIMIT
                    )
                elif r.target in rs.chains:
                    walk(r.target, eff, (*stack, name), f"{path} {r.text} >")
                    if r.goto:
                        cond = conjoin(
                            cond, negate_any(r.alternatives, EXPANSION_LIMIT), EXPANSION_LIMIT
                        )
            except AclError as e:
                problems.append(f"line {r.line}: {e} after flattening: {r.text}")
                return

    walk(chain, [Match()], (), chain)
    if problems:
        raise IptablesError(problems)
    return out, TERMINAL[policy]
