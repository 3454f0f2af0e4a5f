"""A compiled ACL as a policy file (docs/policy.md): the acl program, its
map entries as seeds, and the flows that run it.

The text is YAML whose values are written as JSON (valid YAML), one
entry per line, with each rule's source line as a comment next to its
verdict, so a reader can see which entry came from which rule.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from okopy.acl import iptables
from okopy.acl.compile import (
    DEFAULT_MAX_RULES,
    CompiledAcl,
    changed_entries,
    compile_rules,
)
from okopy.acl.rules import AclError

VERDICT_WORDS = {1: "DROP", 2: "ACCEPT", 16: "REJECT"}
# Custom verdicts start above the XDP return codes (XDP_TX 3, XDP_REDIRECT
# 4 would mean something else to the kernel running the same object).
MIN_CUSTOM_VERDICT = 5


@dataclass(frozen=True)
class PolicyOptions:
    source: str  # bpf/acl.c, as the policy file should name it
    switch: str = "s1"
    dpid: int = 1
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


def policy_text(acl: CompiledAcl, opts: PolicyOptions, header: Sequence[str] = ()) -> str:
    """The policy, as text."""
    lines = [f"# {h}" for h in header]
    chains = {v.number: f"-> {v.chain}" for v in opts.verdicts}
    prog = {"source": opts.source}
    if opts.prog_id is not None:
        prog["id"] = opts.prog_id  # type: ignore[assignment]
    if acl.max_rules != DEFAULT_MAX_RULES:
        prog["defines"] = {"ACL_MAX_RULES": acl.max_rules}  # type: ignore[assignment]
    lines += [
        "version: 1",
        "programs:",
        f"  {opts.program}: {_flow(prog)}",
        "switches:",
        f"  {opts.switch}:",
        f"    dpid: {opts.dpid:#x}",
        f"    programs: [{opts.program}]",
        "    maps:",
        f"      {opts.program}:",
    ]
    for name, entries in acl.maps.items():
        if not entries:
            continue
        lines.append(f"        {name}:")
        for e in entries:
            text = f"          - {_flow(e)}"
            if name == "rules":
                i = acl.rule_at(e["key"])
                v = e["value"].get("verdict", 0)
                word = VERDICT_WORDS.get(v) or chains.get(v, "")
                if i is not None:
                    text += f"  # {word} {acl.origins[i]}"
                else:
                    text += f"  # {word} when no rule matches (the chain's policy)"
            lines.append(text)
    then = [_action(a, "accepted packets") for a in opts.then]
    ipv4 = {"eth_type": 0x800}
    flows: list[tuple[dict[str, Any], str]] = []
    if not opts.verdicts:
        lines += [
            "    flows:",
            "      # IPv4 goes through the ACL; what it does not accept is dropped.",
        ]
        bpf: dict[str, Any] = {"bpf": {"prog": opts.program, "drop_unless": "pass"}}
        flows.append(({"table": 0, "priority": 100, "match": ipv4, "actions": [bpf, *then]}, ""))
    else:
        lines += [
            "    flows:",
            "      # IPv4 goes through the ACL, then table 1 acts on its verdict: what",
            "      # it accepts, the chains given verdicts of their own; the rest drops.",
        ]
        bpf = {"bpf": {"prog": opts.program, "table": 1}}
        flows.append(({"table": 0, "priority": 100, "match": ipv4, "actions": [bpf]}, ""))
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
    """A translated iptables-save: the policy text, what was left out, and
    against a previous policy, the map entries that change."""

    text: str
    acl: CompiledAcl
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    changes: tuple[int, int] | None = None  # (written, deleted)


def previous_maps(text: str, opts: PolicyOptions) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The ACL's map entries in a policy an earlier import wrote (the
    switch and program of 'opts'), and the rule limit it was built with."""
    try:
        doc = yaml.safe_load(text)
        prog = doc["programs"][opts.program]
        maps = doc["switches"][opts.switch]["maps"][opts.program]
        limit = int((prog.get("defines") or {}).get("ACL_MAX_RULES", DEFAULT_MAX_RULES))
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise AclError(
            f"the previous policy has no map entries of program {opts.program} on switch "
            f"{opts.switch} ({e.__class__.__name__}: {e})"
        ) from None
    if not isinstance(maps, dict) or not all(
        isinstance(v, list) and all(isinstance(e, dict) and "key" in e and "value" in e for e in v)
        for v in maps.values()
    ):
        raise AclError("the previous policy's ACL maps are not lists of {key, value} entries")
    return maps, limit


def from_iptables(
    save: str,
    opts: PolicyOptions,
    *,
    chain: str = "FORWARD",
    ports: Mapping[str, int] | None = None,
    skip_unsupported: bool = False,
    max_rules: int = DEFAULT_MAX_RULES,
    name: str = "",
    previous: str | None = None,
) -> Imported:
    """`okopy import iptables`: an iptables-save dump -> a policy running
    its 'chain' of the filter table in bpf/acl.c.  With 'previous' (the
    text of the policy an earlier import wrote), rules keep the positions
    they had, so the two policies differ in a few entries per rule added,
    removed or moved."""
    named = Counter(v.chain for v in opts.verdicts)
    twice = sorted(c for c, k in named.items() if k > 1)
    if twice:
        raise AclError(f"--verdict names {', '.join(twice)} more than once")
    rs = iptables.parse_save(save, ports, skip_unsupported)
    rules, default = iptables.flatten(rs, chain, {v.chain: v.number for v in opts.verdicts})
    old: dict[str, list[dict[str, Any]]] | None = None
    reuse: dict[str, list[dict[str, Any]]] = {}
    notes = list(rs.notes)
    if previous is not None:
        old, old_limit = previous_maps(previous, opts)
        if old_limit == max_rules:
            reuse = old
        else:
            notes.append(
                f"the previous policy holds {old_limit} rules, this one {max_rules}: "
                f"every rule takes a new position"
            )
    acl = compile_rules(rules, default, max_rules, reuse)
    header = [
        f"okopy import iptables {name or '-'} (chain {chain}): {len(rules)} ACL rules, "
        f"default {VERDICT_WORDS[default]}",
        "bpf/acl.c classifies; adding, removing or reordering a rule here "
        "changes map entries, not the program.",
    ]
    header += [f"skipped: {s}" for s in rs.skipped]
    changes = changed_entries(old, acl.maps) if old is not None else None
    return Imported(policy_text(acl, opts, header), acl, tuple(rs.skipped), tuple(notes), changes)
