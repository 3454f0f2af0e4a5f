"""A compiled ACL as a policy file (docs/policy.md): the acl program, its
map entries as seeds, and the flows that run it.

The text is YAML whose values are written as JSON (valid YAML), one
entry per line, with each rule's source line as a comment next to its
verdict, so a reader can see which entry came from which rule.
"""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class PolicyOptions:
    source: str  # bpf/acl.c, as the policy file should name it
    switch: str = "s1"
    dpid: int = 1
    program: str = "acl"
    prog_id: int | None = None
    # OpenFlow actions for the packets the ACL accepts.
    then: Sequence[str] = ("normal",)


def _flow(obj: object) -> str:
    return json.dumps(obj, separators=(", ", ": "))


def policy_text(acl: CompiledAcl, opts: PolicyOptions, header: Sequence[str] = ()) -> str:
    """The policy, as text."""
    lines = [f"# {h}" for h in header]
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
                word = VERDICT_WORDS.get(e["value"].get("verdict", 0), "")
                if i is not None:
                    text += f"  # {word} {acl.origins[i]}"
                else:
                    text += f"  # {word} when no rule matches (the chain's policy)"
            lines.append(text)
    bpf = {"bpf": {"prog": opts.program, "drop_unless": "pass"}}
    then: list[object] = []
    for a in opts.then:
        if a in ("normal", "flood", "in_port", "controller"):
            then.append(a)
        elif a.isdigit():
            then.append({"output": int(a)})
        else:
            raise AclError(
                f"action {a!r} for accepted packets: normal, flood, in_port, "
                f"controller or a port number"
            )
    lines += [
        "    flows:",
        "      # IPv4 goes through the ACL; what it does not accept is dropped.",
        "      - "
        + _flow(
            {"table": 0, "priority": 100, "match": {"eth_type": 0x800}, "actions": [bpf, *then]}
        ),
        f"      - {_flow({'table': 0, 'priority': 0, 'actions': list(then)})}",
    ]
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
    rs = iptables.parse_save(save, ports, skip_unsupported)
    rules, default = iptables.flatten(rs, chain)
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
