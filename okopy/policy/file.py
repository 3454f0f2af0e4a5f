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

import hashlib
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from okopy.policy.schema import ConfigError, Problem, Validator, as_int

MAX_PROG_ID = 0xFFFFFFFE
MAX_TABLE = 254
VERDICT_NAMES = {"aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4}
# The largest verdict a bpf action's drop_unless can name (the action
# carries 1 + the verdict in one byte, 0 meaning none).
DROP_UNLESS_MAX = 254


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
    file: str = ""  # the policy file that defines it (one may include others)


@dataclass(frozen=True)
class MapSeed:
    program: str
    map: str
    key: Any
    value: Any
    line: int = 0
    file: str = ""


@dataclass(frozen=True)
class BpfAction:
    prog: str
    table: int | None = None
    drop_unless: int | None = None  # the verdict packets need to go on


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
class OvsSettings:
    """Settings of a switch's Open vSwitch, applied through OVSDB (None:
    left as they are)."""

    bpf_jit: bool | None = None
    bpf_max_map_memory: int | None = None
    fail_mode: str | None = None
    controllers: tuple[str, ...] | None = None

    def over(self, base: OvsSettings) -> OvsSettings:
        """These settings, and 'base''s where these leave one unset."""
        return OvsSettings(*(
            mine if mine is not None else theirs
            for mine, theirs in zip(astuple_shallow(self), astuple_shallow(base), strict=True)
        ))  # fmt: skip

    def other_config(self) -> dict[str, str]:
        """The Open_vSwitch table's other_config keys these set."""
        out = {}
        if self.bpf_jit is not None:
            out["bpf-jit"] = "true" if self.bpf_jit else "false"
        if self.bpf_max_map_memory is not None:
            out["bpf-max-map-memory"] = str(self.bpf_max_map_memory)
        return out


def astuple_shallow(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in fields(obj))


@dataclass(frozen=True)
class SwitchSpec:
    name: str
    dpid: int
    programs: tuple[str, ...]
    seeds: tuple[MapSeed, ...]
    flows: tuple[FlowSpec, ...]
    line: int = 0
    template: str | None = None
    ovsdb: str | None = None  # the switch's OVSDB, e.g. unix:/run/openvswitch/db.sock
    bridge: str | None = None  # its bridge there (default: the one with its dpid)
    settings: OvsSettings = OvsSettings()


@dataclass(frozen=True)
class Policy:
    programs: dict[str, ProgramSpec]
    switches: dict[str, SwitchSpec]
    path: Path | None = None
    # Every file read (the policy, then the files it includes), with the
    # SHA-256 of its text: what the controller watches and its config hash.
    files: tuple[tuple[str, str], ...] = ()

    def watched(self) -> list[Path]:
        """The files whose change changes what this policy deploys: its own
        files and its programs' sources and objects."""
        out = [Path(f) for f, _ in self.files]
        for spec in self.programs.values():
            out += [p for p in (spec.source, spec.object) if p is not None]
        return out

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
    "icmpv6_type": _int_range(0, 255),
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
    "icmpv6_type": ("ip_proto", {58}),
}
SIMPLE_ACTIONS = ("drop", "normal", "controller", "in_port", "flood")
# Every mapping of the policy, by where it sits: (required keys, optional
# keys).  docs/policy.md has a table for each; tests/unit/test_policy_doc.py
# checks the two agree.
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "": (("version",), ("include", "programs", "templates", "switches")),
    "programs.NAME": ((), ("source", "object", "id", "function", "defines", "sandbox")),
    "templates.NAME": ((), ("params", "programs", "maps", "flows", "settings")),
    "switches.NAME": (
        ("dpid",),
        ("template", "params", "programs", "maps", "flows", "ovsdb", "bridge", "settings"),
    ),
    "switches.NAME.settings": ((), ("bpf-jit", "bpf-max-map-memory", "fail-mode", "controllers")),
    "switches.NAME.maps.PROGRAM.MAP[]": (("key", "value"), ()),
    "switches.NAME.flows[]": (("actions",), ("table", "priority", "match", "cookie")),
    "switches.NAME.flows[].actions[]": ((), ("output", "goto_table", "bpf")),
    "switches.NAME.flows[].actions[].bpf": (("prog",), ("table", "drop_unless")),
}


def parse(text: str, file: str = "<policy>", base: Path | None = None) -> Policy:
    """Validate 'text' and the files it includes; raise PolicyError listing
    every problem."""
    problems: list[Problem] = []
    files: list[tuple[str, str]] = []
    sources = _read(text, file, base, (), problems, files)
    if sources:
        programs = _programs(sources)
        templates = _templates(sources, programs)
        switches = _switches(sources, programs, templates)
        if not any("switches" in src.top for src in sources):
            sources[-1].v.error(sources[-1].root, "the policy needs 'switches' "
                                "(here or in a file it includes)")  # fmt: skip
    if problems:
        raise PolicyError(list(dict.fromkeys(problems)))  # templates repeat theirs
    return Policy(programs, switches, Path(file) if file != "<policy>" else None, tuple(files))


def load(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as e:
        raise PolicyError([Problem(str(path), 0, 0, e.strerror or str(e))]) from None
    return parse(text, str(path), path.parent)


@dataclass
class _Source:
    """One file of the policy: its top-level sections, not yet resolved."""

    v: Validator
    base: Path | None
    root: Node
    top: dict[str, Node]


def _read(
    text: str,
    file: str,
    base: Path | None,
    including: tuple[Path, ...],
    problems: list[Problem],
    files: list[tuple[str, str]],
) -> list[_Source]:
    """The sources of 'text': those of its includes first, in order, then
    its own.  Every file read is added to 'files' with its text's SHA-256."""
    files.append((file, hashlib.sha256(text.encode()).hexdigest()))
    v = Validator(file, problems)
    try:
        root = v.compose(text, "the policy", PolicyError)
    except PolicyError as e:
        problems.extend(e.problems)
        return []
    top = v.mapping(root, "the policy", *KEYS[""])
    if top is None:
        return []
    if "version" in top and v.scalar(top["version"], "version") != 1:
        v.error(top["version"], "version must be 1")
    here = Path(file).resolve() if file != "<policy>" else None
    chain = (*including, here) if here else including
    out: list[_Source] = []
    if "include" in top:
        for name, node in v.name_list(top["include"], "include"):
            path = Path(name) if Path(name).is_absolute() or base is None else base / name
            if path.resolve() in chain:
                loop = " -> ".join(str(p) for p in (*chain, path.resolve()))
                v.error(node, f"include {name}: includes itself ({loop})")
                continue
            try:
                inc_text = path.read_text()
            except OSError as e:
                v.error(node, f"include {name}: {e.strerror or e}")
                continue
            out += _read(inc_text, str(path), path.parent, chain, problems, files)
    out.append(_Source(v, base, root, top))
    return out


def _named(
    sources: list[_Source], section: str, what: str
) -> list[tuple[str, Node, Node, _Source]]:
    """(name, name node, value node, source) of every entry of 'section' in
    every source; a name given twice is an error at the second."""
    out: list[tuple[str, Node, Node, _Source]] = []
    seen: dict[str, tuple[str, int]] = {}
    for src in sources:
        node = src.top.get(section)
        if node is None:
            continue
        if not isinstance(node, MappingNode):
            src.v.error(node, f"{section} must be a mapping of name -> {what}")
            continue
        for k, val in node.value:
            name = str(k.value) if isinstance(k, ScalarNode) else ""
            if name in seen:
                f, line = seen[name]
                src.v.error(k, f"{what} {name} is also defined at {f}:{line}")
                continue
            seen[name] = (src.v.file, k.start_mark.line + 1)
            out.append((name, k, val, src))
    return out


def _programs(sources: list[_Source]) -> dict[str, ProgramSpec]:
    out: dict[str, ProgramSpec] = {}
    used_ids: dict[int, str] = {}
    pending: list[tuple[str, dict[str, Node], Node, _Source]] = []
    for name, k, pnode, src in _named(sources, "programs", "program"):
        v = src.v
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
        pending.append((name, fields, pnode, src))
    next_id = 1
    for name, fields, pnode, src in pending:
        v = src.v
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
            _path(v, fields, "source", src.base),
            _path(v, fields, "object", src.base),
            function,
            tuple(defines),
            sandbox,
            pnode.start_mark.line + 1,
            v.file,
        )
    return out


def _path(v: Validator, fields: dict[str, Node], key: str, base: Path | None) -> Path | None:
    """A file named in the policy, relative to the directory of its file."""
    if key not in fields:
        return None
    p = v.scalar(fields[key], key)
    if not isinstance(p, str):
        v.error(fields[key], f"{key} must be a file name")
        return None
    path = Path(p)
    return path if path.is_absolute() or base is None else base / path


@dataclass
class _Template:
    name: str
    v: Validator
    fields: dict[str, Node]
    params: dict[str, Any]  # name -> default (None: the switch must give it)


def _templates(sources: list[_Source], programs: dict[str, ProgramSpec]) -> dict[str, _Template]:
    out: dict[str, _Template] = {}
    for name, _k, tnode, src in _named(sources, "templates", "template"):
        fields = src.v.mapping(tnode, f"template {name}", *KEYS["templates.NAME"])
        if fields is None:
            continue
        params: dict[str, Any] = {}
        pnode = fields.get("params")
        if pnode is not None and not isinstance(pnode, MappingNode):
            src.v.error(pnode, f"template {name} params must be a mapping NAME: default")
        elif pnode is not None:
            for pk, pv in pnode.value:
                pname = str(pk.value)
                if not pname.isidentifier():
                    src.v.error(pk, f"parameter name {pname!r}: use letters, digits and _")
                    continue
                params[pname] = src.v.plain(pv)
        out[name] = _Template(name, src.v, fields, params)
    return out


def _switches(
    sources: list[_Source], programs: dict[str, ProgramSpec], templates: dict[str, _Template]
) -> dict[str, SwitchSpec]:
    out: dict[str, SwitchSpec] = {}
    dpids: dict[int, str] = {}
    for name, _k, snode, src in _named(sources, "switches", "switch"):
        v = src.v
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
        template = _switch_template(v, fields, templates, name)
        params = _switch_params(v, fields, template, name)
        # The template's parts, then the switch's own, each read in its
        # file with the switch's parameters.
        parts = [(template.v.with_params(params), template.fields)] if template else []
        parts.append((v.with_params(params) if template else v, fields))
        progs: list[str] = []
        for pv, pf in parts:
            for pname, pn in pv.name_list(pf["programs"], "programs") if "programs" in pf else []:
                if pname not in programs:
                    known = ", ".join(programs) or "none"
                    pv.error(pn, f"unknown program {pname!r} (programs: {known})")
                elif pname not in progs:
                    progs.append(pname)
        seeds: dict[tuple[str, str, str], MapSeed] = {}
        flows: dict[tuple[int, int, tuple[tuple[str, Any], ...]], FlowSpec] = {}
        for pv, pf in parts:
            for seed in _seeds(pv, pf.get("maps"), progs, name):
                seeds[seed.program, seed.map, json.dumps(seed.key, sort_keys=True)] = seed
            for flow in _flows(pv, pf.get("flows"), progs, name):
                # The switch's flow replaces the template's with its table,
                # priority and match.
                flows[flow.table, flow.priority, flow.match] = flow
        settings = OvsSettings()
        for pv, pf in parts:
            if "settings" in pf:
                settings = _settings(pv, pf["settings"], name).over(settings)
        ovsdb = _ovsdb_remote(v, fields, name)
        bridge = v.scalar(fields["bridge"], "bridge") if "bridge" in fields else None
        if bridge is not None and not isinstance(bridge, str):
            v.error(fields["bridge"], f"switch {name} bridge must be a name")
            bridge = None
        if "ovsdb" not in fields and settings != OvsSettings():
            v.error(snode, f"switch {name} has settings but no ovsdb to apply them through")
        out[name] = SwitchSpec(
            name,
            dpid or 0,
            tuple(progs),
            tuple(seeds.values()),
            tuple(flows.values()),
            snode.start_mark.line + 1,
            template.name if template else None,
            ovsdb,
            bridge,
            settings,
        )
    return out


OVSDB_METHODS = ("unix:", "tcp:", "ssl:")
CONTROLLER_METHODS = ("tcp:", "ssl:", "unix:", "ptcp:", "pssl:", "punix:")


def _ovsdb_remote(v: Validator, fields: dict[str, Node], switch: str) -> str | None:
    if "ovsdb" not in fields:
        return None
    remote = v.scalar(fields["ovsdb"], "ovsdb")
    if not isinstance(remote, str) or not remote.startswith(OVSDB_METHODS):
        v.error(fields["ovsdb"], f"switch {switch} ovsdb {remote!r}: give an OVSDB remote, "
                "unix:PATH, tcp:IP:PORT or ssl:IP:PORT")  # fmt: skip
        return None
    return remote


def _settings(v: Validator, node: Node, switch: str) -> OvsSettings:
    f = v.mapping(node, f"settings of switch {switch}", *KEYS["switches.NAME.settings"])
    if f is None:
        return OvsSettings()
    jit = v.scalar(f["bpf-jit"], "bpf-jit") if "bpf-jit" in f else None
    if jit is not None and not isinstance(jit, bool):
        v.error(f["bpf-jit"], f"bpf-jit: {jit!r} is not true or false")
        jit = None
    memory = (
        v.integer(f["bpf-max-map-memory"], "bpf-max-map-memory", 0, (1 << 63) - 1)
        if "bpf-max-map-memory" in f
        else None
    )
    mode = v.scalar(f["fail-mode"], "fail-mode") if "fail-mode" in f else None
    if mode is not None and mode not in ("secure", "standalone"):
        v.error(f["fail-mode"], f"fail-mode: {mode!r} is not secure or standalone")
        mode = None
    controllers = None
    if "controllers" in f:
        controllers = []
        for target, tnode in v.name_list(f["controllers"], "controllers"):
            if not target.startswith(CONTROLLER_METHODS):
                v.error(tnode, f"controller {target!r}: give tcp:IP:PORT, ssl:IP:PORT or "
                        "unix:PATH (or a passive ptcp:, pssl:, punix:)")  # fmt: skip
            controllers.append(target)
    return OvsSettings(jit, memory, mode, tuple(controllers) if controllers is not None else None)


def _switch_template(
    v: Validator, fields: dict[str, Node], templates: dict[str, _Template], switch: str
) -> _Template | None:
    if "template" not in fields:
        return None
    tname = v.scalar(fields["template"], "template")
    if tname not in templates:
        known = ", ".join(templates) or "none"
        v.error(fields["template"], f"switch {switch}: unknown template {tname!r} "
                f"(templates: {known})")  # fmt: skip
        return None
    return templates[tname]


def _switch_params(
    v: Validator, fields: dict[str, Node], template: _Template | None, switch: str
) -> dict[str, Any]:
    """The template's parameters with the switch's values."""
    params = dict(template.params) if template else {}
    node = fields.get("params")
    if node is not None and template is None:
        v.error(node, f"switch {switch} has params but no template")
    elif node is not None and not isinstance(node, MappingNode):
        v.error(node, f"switch {switch} params must be a mapping NAME: value")
    elif node is not None and template is not None:
        for pk, pv in node.value:
            pname = str(pk.value)
            if pname not in template.params:
                known = ", ".join(template.params) or "none"
                v.error(pk, f"template {template.name} has no parameter {pname!r} "
                        f"(parameters: {known})")  # fmt: skip
                continue
            params[pname] = v.plain(pv)
    if template is not None:
        for pname, value in params.items():
            if value is None:
                v.error(fields.get("params") or fields["template"],
                        f"switch {switch} must give template {template.name}'s "
                        f"parameter {pname!r}")  # fmt: skip
    return params


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
                what = f"an entry of map {mk.value}"
                f = v.mapping(e, what, *KEYS["switches.NAME.maps.PROGRAM.MAP[]"])
                if f is not None and "key" in f and "value" in f:
                    out.append(
                        MapSeed(
                            prog,
                            str(mk.value),
                            v.plain(f["key"]),
                            v.plain(f["value"]),
                            e.start_mark.line + 1,
                            v.file,
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
        if raw is None and isinstance(fv, ScalarNode) and fv.value.startswith("$"):
            continue  # a parameter the switch did not give: said already
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
            keep = None
            if "drop_unless" in b:
                word = v.scalar(b["drop_unless"], "bpf drop_unless")
                if word is not None:
                    try:
                        verdict = _verdict(word)
                    except ValueError:
                        verdict = None
                    # A name ("none" is none here) or a number that fits.
                    keep = VERDICT_NAMES.get(verdict) if isinstance(verdict, str) else verdict
                    if keep is None or keep > DROP_UNLESS_MAX:
                        v.error(
                            b["drop_unless"],
                            f"bpf drop_unless {word!r}: a verdict name "
                            f"({', '.join(VERDICT_NAMES)}) or a number from 0 to "
                            f"{DROP_UNLESS_MAX}",
                        )
                        continue
            out.append(BpfAction(str(prog), t, keep))
    return out
