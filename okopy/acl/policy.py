"""Compiled ACLs as a policy file (docs/policy.md): the acl program (and
acl6 for IPv6), their map entries as seeds, and the flows that run them.

The text is YAML whose values are written as JSON (valid YAML), one
entry per line, with each rule's source line as a comment next to its
verdict, so a reader can see which entry came from which rule.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml

from okopy.acl import iptables
from okopy.acl.compile import (
    DEFAULT_MAX_RULES,
    CompiledAcl,
    changed_entries,
    compile_rules,
    live_slot,
)
from okopy.acl.rules import SOURCES, AclError

VERDICT_WORDS = {1: "DROP", 2: "ACCEPT", 16: "REJECT"}
# The EtherType of each family's packets: what runs through its ACL.
ETH_TYPES = {4: 0x0800, 6: 0x86DD}
# ICMPv6 neighbour discovery (router and neighbour solicitations and
# advertisements): IPv6's ARP, which goes on past the ACL as ARP does.
# Through a router it never reaches the FORWARD chain; in a switch, hosts
# could not find each other without it.
NEIGHBOUR_DISCOVERY = (133, 134, 135, 136)
# Custom verdicts start above the XDP return codes (XDP_TX 3, XDP_REDIRECT
# 4 would mean something else to the kernel running the same object).
MIN_CUSTOM_VERDICT = 5


@dataclass(frozen=True)
class PolicyOptions:
    source: str  # bpf/acl.c, as the policy file should name it
    # bpf/acl6.c, as the policy file should name it (default: beside
    # 'source').
    source6: str = ""
    switch: str = "s1"
    dpid: int = 1
    # The IPv4 ACL's program name; the IPv6 one's is this with a 6.
    program: str = "acl"
    prog_id: int | None = None
    # OpenFlow actions for the packets the ACL accepts.
    then: Sequence[str] = ("normal",)
    # User chains that become verdicts of their own (`--verdict`): the
    # chain, its verdict number, and the OpenFlow actions for it.
    verdicts: Sequence[CustomVerdict] = ()


@dataclass(frozen=True)
class CustomVerdict:
    """Packets that jump to user chain 'chain' get verdict 'number', and
    the policy's flows give them 'actions' (none: dropped)."""

    chain: str
    number: int
    actions: Sequence[str] = ()

    @classmethod
    def parse(cls, text: str) -> CustomVerdict:
        """CHAIN=NUMBER[:ACTION,...], as `--verdict` takes it."""
        chain, eq, rest = text.partition("=")
        number, _, actions = rest.partition(":")
        try:
            n = int(number, 0)
        except ValueError:
            n = -1
        if not eq or not chain or n < 0:
            raise AclError(f"--verdict {text!r}: give CHAIN=NUMBER[:ACTION,...]")
        if n < MIN_CUSTOM_VERDICT or n > 0xFFFFFFFF or n in VERDICT_WORDS:
            raise AclError(
                f"--verdict {text!r}: the number must be from {MIN_CUSTOM_VERDICT} to "
                f"4294967295, not 16 (0 to 4 are XDP's return codes, 16 is REJECT's)"
            )
        acts = tuple(a for a in actions.split(",") if a) if actions else ()
        for a in acts:
            _action(a, f"--verdict {chain}", drop=True)
        return cls(chain, n, acts)


def _flow(obj: object) -> str:
    return json.dumps(obj, separators=(", ", ": "))


def _action(a: str, what: str, drop: bool = False) -> object:
    """A policy action for an action name of the command line ('drop'
    too if 'drop')."""
    names = ("normal", "flood", "in_port", "controller", *(("drop",) if drop else ()))
    if a in names:
        return a
    if a.isdigit():
        return {"output": int(a)}
    raise AclError(f"action {a!r} for {what}: {', '.join(names)} or a port number")


def _program_name(opts: PolicyOptions, family: int) -> str:
    return opts.program if family == 4 else f"{opts.program}6"


def _source(opts: PolicyOptions, family: int) -> str:
    if family == 4:
        return opts.source
    return opts.source6 or str(PurePath(opts.source).with_name("acl6.c"))


def policy_text(
    acls: Sequence[CompiledAcl], opts: PolicyOptions, header: Sequence[str] = ()
) -> str:
    """The policy running 'acls' (one per address family, bpf/acl.c for
    IPv4 and bpf/acl6.c for IPv6), as text."""
    lines = [f"# {h}" for h in header]
    chains = {v.number: f"-> {v.chain}" for v in opts.verdicts}
    names = [_program_name(opts, acl.family) for acl in acls]
    lines += ["version: 1", "programs:"]
    for k, (acl, name) in enumerate(zip(acls, names, strict=True)):
        prog: dict[str, Any] = {"source": _source(opts, acl.family)}
        if opts.prog_id is not None:
            prog["id"] = opts.prog_id + k
        if acl.max_rules != DEFAULT_MAX_RULES:
            prog["defines"] = {"ACL_MAX_RULES": acl.max_rules}
        lines.append(f"  {name}: {_flow(prog)}")
    lines += [
        "switches:",
        f"  {opts.switch}:",
        f"    dpid: {opts.dpid:#x}",
        f"    programs: [{', '.join(names)}]",
        "    maps:",
    ]
    for acl, name in zip(acls, names, strict=True):
        lines.append(f"      {name}:")
        for map_name, entries in acl.maps.items():
            if not entries:
                continue
            lines.append(f"        {map_name}:")
            for e in entries:
                text = f"          - {_flow(e)}"
                if map_name == "rules":
                    i = acl.rule_at(e["key"])
                    v = e["value"].get("verdict", 0)
                    word = VERDICT_WORDS.get(v) or chains.get(v, "")
                    if i is not None:
                        text += f"  # {word} {acl.origins[i]}"
                    elif e["key"] == acl.max_rules + live_slot(acl.maps):
                        text += f"  # {word} when no rule matches (the chain's policy)"
                    elif e["key"] >= acl.max_rules:
                        text += f"  # {word}: the previous default, out of force"
                    else:
                        text += f"  # {word}: a rule taken out of force (cleared next change)"
                lines.append(text)
    then = [_action(a, "accepted packets") for a in opts.then]
    families = " and ".join(f"IPv{acl.family}" for acl in acls)
    through = f"{families} packets go through the ACL of their family"
    flows: list[tuple[dict[str, Any], str]] = []
    lines.append("    flows:")
    if any(acl.family == 6 for acl in acls):
        for t in NEIGHBOUR_DISCOVERY:
            match = {"eth_type": ETH_TYPES[6], "ip_proto": 58, "icmpv6_type": t}
            flow = {"table": 0, "priority": 110, "match": match, "actions": then}
            flows.append((flow, "  # neighbour discovery goes on, as ARP does"))
    if not opts.verdicts:
        lines.append(f"      # {through}; what it does not accept is dropped.")
        for acl, name in zip(acls, names, strict=True):
            bpf: dict[str, Any] = {"bpf": {"prog": name, "drop_unless": "pass"}}
            match = {"eth_type": ETH_TYPES[acl.family]}
            flows.append(
                ({"table": 0, "priority": 100, "match": match, "actions": [bpf, *then]}, "")
            )
    else:
        lines += [
            f"      # {through}, then table 1 acts on its verdict:",
            "      # what it accepts, the chains given verdicts of their own; the rest drops.",
        ]
        for acl, name in zip(acls, names, strict=True):
            bpf = {"bpf": {"prog": name, "table": 1}}
            match = {"eth_type": ETH_TYPES[acl.family]}
            flows.append(({"table": 0, "priority": 100, "match": match, "actions": [bpf]}, ""))
        pass_ = {"bpf_verdict": "pass"}
        flows.append(({"table": 1, "priority": 100, "match": pass_, "actions": then}, ""))
        for v in opts.verdicts:
            acts = [_action(a, f"--verdict {v.chain}", drop=True) for a in v.actions]
            match = {"bpf_verdict": v.number}
            flow = {"table": 1, "priority": 100, "match": match, "actions": acts or ["drop"]}
            flows.append((flow, f"  # -> {v.chain}"))
        flows.append(({"table": 1, "priority": 0, "actions": ["drop"]}, ""))
    flows.append(({"table": 0, "priority": 0, "actions": list(then)}, ""))
    lines += [f"      - {_flow(f)}{comment}" for f, comment in flows]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Imported:
    """Translated dumps (one per address family): the policy text, the
    ACLs, what was left out, and against a previous policy, the map
    entries that change."""

    text: str
    acls: tuple[CompiledAcl, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    changes: tuple[int, int] | None = None  # (written, deleted)

    @property
    def acl(self) -> CompiledAcl:
        """The ACL of a one-dump import."""
        if len(self.acls) != 1:
            raise AclError(f"{len(self.acls)} ACLs, one per address family")
        return self.acls[0]

    @property
    def rules(self) -> int:
        return sum(acl.rules for acl in self.acls)

    def entry_count(self) -> int:
        return sum(acl.entry_count() for acl in self.acls)


def previous_maps(
    text: str, opts: PolicyOptions, family: int = 4
) -> tuple[dict[str, list[dict[str, Any]]], int] | None:
    """The map entries of the ACL of 'family' in a policy an earlier import
    wrote (the switch and program of 'opts'), and the rule limit it was
    built with; None when that policy has no ACL of the family."""
    name = _program_name(opts, family)
    try:
        doc = yaml.safe_load(text)
        if name not in (doc.get("programs") or {}):
            return None
        prog = doc["programs"][name]
        maps = doc["switches"][opts.switch]["maps"][name]
        limit = int((prog.get("defines") or {}).get("ACL_MAX_RULES", DEFAULT_MAX_RULES))
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise AclError(
            f"the previous policy has no map entries of program {name} on switch "
            f"{opts.switch} ({e.__class__.__name__}: {e})"
        ) from None
    if not isinstance(maps, dict) or not all(
        isinstance(v, list) and all(isinstance(e, dict) and "key" in e and "value" in e for e in v)
        for v in maps.values()
    ):
        raise AclError("the previous policy's ACL maps are not lists of {key, value} entries")
    return maps, limit


def from_iptables(
    save: str | Sequence[tuple[str, str]],
    opts: PolicyOptions,
    *,
    chain: str = "FORWARD",
    ports: Mapping[str, int] | None = None,
    skip_unsupported: bool = False,
    max_rules: int = DEFAULT_MAX_RULES,
    name: str = "",
    previous: str | None = None,
) -> Imported:
    """`okopy import iptables`: an iptables-save dump (or several: (name,
    text) pairs, an iptables-save and an ip6tables-save) -> a policy
    running their 'chain' of the filter table, IPv4 in bpf/acl.c and IPv6
    in bpf/acl6.c.  With 'previous' (the text of the policy an earlier
    import wrote), rules keep the positions they had, so the two policies
    differ in a few entries per rule added, removed or moved."""
    named = Counter(v.chain for v in opts.verdicts)
    twice = sorted(c for c, k in named.items() if k > 1)
    if twice:
        raise AclError(f"--verdict names {', '.join(twice)} more than once")
    dumps = [(name, save)] if isinstance(save, str) else list(save)
    parsed = [
        (n, iptables.parse_save(text, ports, skip_unsupported, chain=chain)) for n, text in dumps
    ]
    by_family = Counter(rs.family for _, rs in parsed)
    if any(k > 1 for k in by_family.values()) or not parsed:
        raise AclError(
            "give one dump per address family (an iptables-save, an ip6tables-save): got "
            + (", ".join(f"{n or '-'} (IPv{rs.family})" for n, rs in parsed) or "none")
        )
    parsed.sort(key=lambda p: p[1].family)
    acls: list[CompiledAcl] = []
    header: list[str] = []
    skipped: list[str] = []
    notes: list[str] = []
    changes: tuple[int, int] | None = None
    earlier = {
        rs.family: previous_maps(previous, opts, rs.family) if previous is not None else None
        for _, rs in parsed
    }
    if previous is not None and not any(earlier.values()):
        raise AclError(
            f"the previous policy has no ACL program "
            f"({' or '.join(_program_name(opts, f) for f in earlier)}) on switch {opts.switch}"
        )
    for dump_name, rs in parsed:
        rules, default = iptables.flatten(rs, chain, {v.chain: v.number for v in opts.verdicts})
        old: dict[str, list[dict[str, Any]]] | None = None
        reuse: dict[str, list[dict[str, Any]]] = {}
        notes += rs.notes
        if previous is not None:
            found = earlier[rs.family]
            old = found[0] if found else {}
            if found and found[1] == max_rules:
                reuse = old
            elif found:
                notes.append(
                    f"the previous policy's IPv{rs.family} ACL holds {found[1]} rules, this "
                    f"one {max_rules}: every rule takes a new position"
                )
        acl = compile_rules(rules, default, max_rules, reuse, rs.family)
        acls.append(acl)
        header += [
            f"okopy import iptables {dump_name or '-'} (IPv{rs.family}, chain {chain}): "
            f"{len(rules)} ACL rules, default {VERDICT_WORDS[default]}",
        ]
        skipped += rs.skipped
        if old is not None:
            w, d = changed_entries(old, acl.maps)
            changes = (w, d) if changes is None else (changes[0] + w, changes[1] + d)
    programs = " and ".join(SOURCES[acl.family] for acl in acls)
    header.append(
        f"{programs} {'classifies' if len(acls) == 1 else 'classify'}; adding, removing or "
        "reordering a rule here changes map entries, not the program."
    )
    header += [f"skipped: {s}" for s in skipped]
    return Imported(
        policy_text(acls, opts, header), tuple(acls), tuple(skipped), tuple(notes), changes
    )
