"""The policy file: programs, map seeds and flows per switch, validated.

The schema is code.  Validation walks the YAML node tree, so every problem
is reported as `file:line:column: what is wrong`, and all problems are
reported at once.  Unknown keys are errors.  This module is pure: reading
files, building and verifying programs happen elsewhere (`okopy.policy.build`).

    version: 1
    programs:
      guard: {source: bpf/ratelimit.c}          # or object: x.o; id: optional
    switches:
      edge:
        dpid: 0x1
        programs: [guard]
        maps:
          guard:
            config: [{key: 0, value: {rate: 100, burst: 10}}]
        flows:
          - {table: 0, priority: 10, match: {eth_type: 0x0800},
             actions: [{bpf: {prog: guard, table: 1}}]}
          - {table: 1, priority: 10, match: {bpf_verdict: drop}, actions: [drop]}
          - {table: 1, priority: 0, actions: [normal]}
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from okopy.policy.schema import ConfigError, Problem, Validator, as_int

MAX_PROG_ID = 0xFFFFFFFE
MAX_TABLE = 254
VERDICT_NAMES = {"aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4}


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    prog_id: int
    source: Path | None
    object: Path | None
    function: str | None = None
    defines: tuple[str, ...] = ()
    sandbox: bool = False
    line: int = 0


@dataclass(frozen=True)
class MapSeed:
    program: str
    map: str
    key: Any
    value: Any
    line: int = 0


@dataclass(frozen=True)
class BpfAction:
    prog: str
    table: int | None = None


Action = str | tuple[str, int] | BpfAction


@dataclass(frozen=True)
class FlowSpec:
    table: int
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...]
    cookie: int = 0
    line: int = 0


@dataclass(frozen=True)
class SwitchSpec:
    name: str
    dpid: int
    programs: tuple[str, ...]
    seeds: tuple[MapSeed, ...]
    flows: tuple[FlowSpec, ...]
    line: int = 0


@dataclass(frozen=True)
class Policy:
    programs: dict[str, ProgramSpec]
    switches: dict[str, SwitchSpec]
    path: Path | None = None

    def switch_by_dpid(self, dpid: int) -> SwitchSpec | None:
        return next((s for s in self.switches.values() if s.dpid == dpid), None)


# Match fields: name -> value checker returning the canonical value.
class PolicyError(ConfigError):
    """The policy is invalid; carries every problem found."""


def _int_range(lo: int, hi: int) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        n = as_int(v)
        if not lo <= n <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return n

    return check


def _mac(v: Any) -> str:
    s = str(v).lower()
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{v!r} is not a MAC address")
    bytes.fromhex("".join(parts))
    return s


def _ipv4_masked(v: Any) -> str:
    try:
        return (
            str(ipaddress.IPv4Network(str(v), strict=False))
            if "/" in str(v)
            else str(ipaddress.IPv4Address(str(v)))
        )
    except ValueError:
        raise ValueError(f"{v!r} is not an IPv4 address or prefix") from None


def _verdict(v: Any) -> Any:
    if isinstance(v, str) and (v == "none" or v in VERDICT_NAMES):
        return v
    names = "none, " + ", ".join(VERDICT_NAMES)
    try:
        n = as_int(v)
    except ValueError:
        raise ValueError(f"{v!r} is neither a verdict name ({names}) nor a number") from None
    if not 0 <= n <= 0xFFFFFFFF:
        raise ValueError(f"a verdict is a 32-bit number or one of {names}")
    return n


MATCH_FIELDS: dict[str, Callable[[Any], Any]] = {
    "in_port": _int_range(1, 0xFFFFFF00),
    "eth_type": _int_range(0, 0xFFFF),
    "eth_src": _mac,
    "eth_dst": _mac,
    "vlan_vid": _int_range(0, 4095),
    "ip_proto": _int_range(0, 255),
    "ipv4_src": _ipv4_masked,
    "ipv4_dst": _ipv4_masked,
    "tcp_src": _int_range(0, 65535),
    "tcp_dst": _int_range(0, 65535),
    "udp_src": _int_range(0, 65535),
    "udp_dst": _int_range(0, 65535),
    "bpf_verdict": _verdict,
}
# Prerequisites OpenFlow requires, checked so the switch never refuses.
PREREQUISITES = {
    "ip_proto": ("eth_type", {0x0800, 0x86DD}),
    "ipv4_src": ("eth_type", {0x0800}),
    "ipv4_dst": ("eth_type", {0x0800}),
    "tcp_src": ("ip_proto", {6}),
    "tcp_dst": ("ip_proto", {6}),
    "udp_src": ("ip_proto", {17}),
    "udp_dst": ("ip_proto", {17}),
}
SIMPLE_ACTIONS = ("drop", "normal", "controller", "in_port", "flood")
# Every mapping of the policy, by where it sits: (required keys, optional
# keys).  docs/policy.md has a table for each; tests/unit/test_policy_doc.py
# checks the two agree.
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "": (("version", "switches"), ("programs",)),
    "programs.NAME": ((), ("source", "object", "id", "function", "defines", "sandbox")),
    "switches.NAME": (("dpid",), ("programs", "maps", "flows")),
    "switches.NAME.maps.PROGRAM.MAP[]": (("key", "value"), ()),
    "switches.NAME.flows[]": (("actions",), ("table", "priority", "match", "cookie")),
    "switches.NAME.flows[].actions[]": ((), ("output", "goto_table", "bpf")),
    "switches.NAME.flows[].actions[].bpf": (("prog",), ("table",)),
}


def parse(text: str, file: str = "<policy>", base: Path | None = None) -> Policy:
    """Validate 'text'; raise PolicyError listing every problem."""
    v = Validator(file)
    root = v.compose(text, "the policy", PolicyError)
    top = v.mapping(root, "the policy", *KEYS[""])
    if top is None:
        raise PolicyError(v.problems)
    if "version" in top and v.scalar(top["version"], "version") != 1:
        v.error(top["version"], "version must be 1")
    programs = _programs(v, top.get("programs"), base)
    switches = _switches(v, top.get("switches"), programs)
    if v.problems:
        raise PolicyError(v.problems)
    return Policy(programs, switches, Path(file) if file != "<policy>" else None)


def load(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as e:
        raise PolicyError([Problem(str(path), 0, 0, e.strerror or str(e))]) from None
    return parse(text, str(path), path.parent)


def _programs(v: Validator, node: Node | None, base: Path | None) -> dict[str, ProgramSpec]:
    out: dict[str, ProgramSpec] = {}
    if node is None:
        return out
    if not isinstance(node, MappingNode):
        v.error(node, "programs must be a mapping of name -> program")
        return out
    used_ids: dict[int, str] = {}
    pending: list[tuple[str, dict[str, Node], Node]] = []
    for k, pnode in node.value:
        name = k.value if isinstance(k, ScalarNode) else ""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            v.error(k, f"program name {name!r}: use letters, digits, - and _")
            continue
        fields = v.mapping(pnode, f"program {name}", *KEYS["programs.NAME"])
        if fields is None:
            continue
        if ("source" in fields) == ("object" in fields):
            v.error(pnode, f"program {name} needs exactly one of 'source' or 'object'")
        if "id" in fields:
            pid = v.integer(fields["id"], f"program {name} id", 1, MAX_PROG_ID)
            if pid is not None:
                if pid in used_ids:
                    v.error(fields["id"], f"id {pid} is already used by {used_ids[pid]}")
                used_ids[pid] = name
        pending.append((name, fields, pnode))
    next_id = 1
    for name, fields, pnode in pending:
        pid = v.integer(fields["id"], "id", 1, MAX_PROG_ID) if "id" in fields else None
        if pid is None:
            while next_id in used_ids:
                next_id += 1
            pid = next_id
            used_ids[pid] = name

        defines: list[str] = []
        if "defines" in fields:
            dnode = fields["defines"]
            if not isinstance(dnode, MappingNode):
                v.error(dnode, f"program {name} defines must be a mapping NAME: value")
            else:
                for dk, dv in dnode.value:
                    defines.append(f"{dk.value}={v.scalar(dv, 'define')}")
        sandbox = False
        if "sandbox" in fields:
            sandbox = v.scalar(fields["sandbox"], "sandbox") is True
        function = v.scalar(fields["function"], "function") if "function" in fields else None
        out[name] = ProgramSpec(
            name,
            pid,
            _path(v, fields, "source", base),
            _path(v, fields, "object", base),
            function,
            tuple(defines),
            sandbox,
            pnode.start_mark.line + 1,
        )
    return out


def _path(v: Validator, fields: dict[str, Node], key: str, base: Path | None) -> Path | None:
    """A file named in the policy, relative to the policy's directory."""
    if key not in fields:
        return None
    p = v.scalar(fields[key], key)
    if not isinstance(p, str):
        v.error(fields[key], f"{key} must be a file name")
        return None
    path = Path(p)
    return path if path.is_absolute() or base is None else base / path


def _switches(
    v: Validator, node: Node | None, programs: dict[str, ProgramSpec]
) -> dict[str, SwitchSpec]:
    out: dict[str, SwitchSpec] = {}
    if node is None:
        return out
    if not isinstance(node, MappingNode):
        v.error(node, "switches must be a mapping of name -> switch")
        return out
    dpids: dict[int, str] = {}
    for k, snode in node.value:
        name = str(k.value)
        fields = v.mapping(snode, f"switch {name}", *KEYS["switches.NAME"])
        if fields is None:
            continue
        dpid = (
            v.integer(fields["dpid"], f"switch {name} dpid", 1, (1 << 64) - 1)
            if ("dpid" in fields)
            else None
        )
        if dpid is not None:
            if dpid in dpids:
                v.error(fields["dpid"], f"dpid {dpid:#x} is also switch {dpids[dpid]}")
            dpids[dpid] = name
        progs = []
        for pname, pn in (
            v.name_list(fields["programs"], "programs") if "programs" in fields else []
        ):
            if pname not in programs:
                v.error(
                    pn,
                    f"unknown program {pname!r} (programs: {', '.join(programs) or 'none'})",
                )
            else:
                progs.append(pname)
        seeds = _seeds(v, fields.get("maps"), progs, name)
        flows = _flows(v, fields.get("flows"), progs, name)
        out[name] = SwitchSpec(
            name,
            dpid or 0,
            tuple(progs),
            tuple(seeds),
            tuple(flows),
            snode.start_mark.line + 1,
        )
    return out


def _seeds(v: Validator, node: Node | None, progs: list[str], switch: str) -> list[MapSeed]:
    out: list[MapSeed] = []
    if node is None:
        return out
    if not isinstance(node, MappingNode):
        v.error(node, f"switch {switch} maps must be a mapping of program -> maps")
        return out
    for pk, pmaps in node.value:
        prog = str(pk.value)
        if prog not in progs:
            v.error(pk, f"maps for {prog!r}, which switch {switch} does not load")
            continue
        if not isinstance(pmaps, MappingNode):
            v.error(pmaps, f"maps of {prog} must be a mapping of map -> entries")
            continue
        for mk, entries in pmaps.value:
            if not isinstance(entries, SequenceNode):
                v.error(entries, f"map {mk.value}: entries must be a list of {{key, value}}")
                continue
            for e in entries.value:
                f = v.mapping(
                    e, f"an entry of map {mk.value}", *KEYS["switches.NAME.maps.PROGRAM.MAP[]"]
                )
                if f is not None and "key" in f and "value" in f:
                    out.append(
                        MapSeed(
                            prog,
                            str(mk.value),
                            v.plain(f["key"]),
                            v.plain(f["value"]),
                            e.start_mark.line + 1,
                        )
                    )
    return out


def _flows(v: Validator, node: Node | None, progs: list[str], switch: str) -> list[FlowSpec]:
    out: list[FlowSpec] = []
    if node is None:
        return out
    if not isinstance(node, SequenceNode):
        v.error(node, f"switch {switch} flows must be a list")
        return out
    seen: dict[tuple[int, int, tuple[tuple[str, Any], ...]], int] = {}
    for fnode in node.value:
        f = v.mapping(fnode, "a flow", *KEYS["switches.NAME.flows[]"])
        if f is None:
            continue
        table = v.integer(f["table"], "table", 0, MAX_TABLE) if "table" in f else 0
        prio = v.integer(f["priority"], "priority", 0, 65535) if "priority" in f else 32768
        cookie = v.integer(f["cookie"], "cookie", 0, (1 << 64) - 1) if "cookie" in f else 0
        match = _match(v, f.get("match"))
        actions = _actions(v, f["actions"], progs, table) if "actions" in f else []
        line = fnode.start_mark.line + 1
        if table is None or prio is None or cookie is None or match is None:
            continue
        key = (table, prio, match)
        if key in seen:
            v.error(fnode, f"same table, priority and match as the flow on line {seen[key]}")
        seen[key] = line
        out.append(FlowSpec(table, prio, match, tuple(actions), cookie, line))
    return out


def _match(v: Validator, node: Node | None) -> tuple[tuple[str, Any], ...] | None:
    if node is None:
        return ()
    if not isinstance(node, MappingNode):
        v.error(node, "match must be a mapping of field -> value")
        return None
    fields: dict[str, Any] = {}
    nodes: dict[str, Node] = {}
    for k, fv in node.value:
        name = str(k.value)
        check = MATCH_FIELDS.get(name)
        if check is None:
            v.error(k, f"unknown match field {name!r} (fields: {', '.join(MATCH_FIELDS)})")
            continue
        raw = v.scalar(fv, name)
        try:
            fields[name] = check(raw)
            nodes[name] = k
        except ValueError as e:
            v.error(fv, f"{name}: {e}")
    for name, (need, values) in PREREQUISITES.items():
        if name in fields and fields.get(need) not in values:
            want = " or ".join(hex(x) if need == "eth_type" else str(x) for x in sorted(values))
            v.error(nodes[name], f"{name} needs {need}: {want} in the same match")
    return tuple(sorted(fields.items()))


def _actions(v: Validator, node: Node, progs: list[str], table: int | None) -> list[Action]:
    out: list[Action] = []
    if not isinstance(node, SequenceNode):
        v.error(node, "actions must be a list")
        return out
    for a in node.value:
        if isinstance(a, ScalarNode):
            if a.value in SIMPLE_ACTIONS:
                out.append(str(a.value))
            else:
                v.error(
                    a,
                    f"unknown action {a.value!r} (simple actions: {', '.join(SIMPLE_ACTIONS)})",
                )
            continue
        f = v.mapping(a, "an action", *KEYS["switches.NAME.flows[].actions[]"])
        if f is None:
            continue
        if len(f) != 1:
            v.error(a, "an action has exactly one of output, goto_table, bpf")
            continue
        kind, val = next(iter(f.items()))
        if kind == "output":
            port = v.integer(val, "output", 1, 0xFFFFFF00)
            if port is not None:
                out.append(("output", port))
        elif kind == "goto_table":
            t = v.integer(val, "goto_table", 0, MAX_TABLE)
            if t is not None:
                if table is not None and t <= table:
                    v.error(val, f"goto_table {t} must be after this flow's table {table}")
                out.append(("goto_table", t))
        else:
            b = v.mapping(val, "bpf", *KEYS["switches.NAME.flows[].actions[].bpf"])
            if b is None or "prog" not in b:
                continue
            prog = v.scalar(b["prog"], "bpf prog")
            if prog not in progs:
                v.error(
                    b["prog"],
                    f"bpf prog {prog!r} is not loaded on this switch "
                    f"(programs: {', '.join(progs) or 'none'})",
                )
                continue
            t = v.integer(b["table"], "bpf table", 0, MAX_TABLE) if "table" in b else None
            if t is not None and table is not None and t <= table:
                v.error(b["table"], f"bpf table {t} must be after this flow's table {table}")
            out.append(BpfAction(str(prog), t))
    return out
