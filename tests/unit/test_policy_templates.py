"""Policies for many switches: templates with parameters, and include."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from okopy.policy import file as policy
from okopy.policy.file import BpfAction, PolicyError

COMMON = """\
version: 1
programs:
  guard: {source: filters/guard.c}
  limit: {source: filters/limit.c, id: 7}
templates:
  edge:
    params: {uplink: null, blocked: 10.0.0.66, ttl: 5}
    programs: [guard]
    maps:
      guard:
        blocked: [{key: $blocked, value: {ttl: $ttl}}]
    flows:
      - {table: 0, priority: 100, match: {in_port: $uplink},
         actions: [{bpf: {prog: guard, table: 1}}]}
      - {table: 0, priority: 0, actions: [normal]}
      - {table: 1, priority: 10, match: {bpf_verdict: pass}, actions: [{output: $uplink}]}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_fifty_switches_from_one_template(tmp_path: Path) -> None:
    write(tmp_path, "common/common.yaml", COMMON)
    lines = ["version: 1", "include: [common/common.yaml]", "switches:"]
    lines += [f"  e{i}: {{dpid: {i}, template: edge, params: {{uplink: {i + 100}}}}}"
              for i in range(1, 51)]  # fmt: skip
    lines += [
        "  odd:",
        "    dpid: 0x99",
        "    template: edge",
        "    params: {uplink: 3, blocked: 10.9.9.9}",
        "    programs: [limit]",
        "    maps: {limit: {config: [{key: 0, value: {rate: 5}}]}}",
        "    flows:",
        "      - {table: 0, priority: 0, actions: [drop]}  # replaces the template's",
    ]
    p = policy.load(write(tmp_path, "policy.yaml", "\n".join(lines) + "\n"))
    assert len(p.switches) == 51
    e7 = p.switches["e7"]
    assert (e7.dpid, e7.programs, e7.template) == (7, ("guard",), "edge")
    assert [(s.map, s.key, s.value) for s in e7.seeds] == [("blocked", "10.0.0.66", {"ttl": 5})]
    assert {f.match for f in e7.flows} == {(("in_port", 107),), (), (("bpf_verdict", "pass"),)}
    assert [f.actions for f in e7.flows if f.table == 1] == [(("output", 107),)]
    odd = p.switches["odd"]
    assert odd.programs == ("guard", "limit")
    assert [s.key for s in odd.seeds] == ["10.9.9.9", 0]
    assert [f.actions for f in odd.flows if (f.table, f.priority) == (0, 0)] == [("drop",)]
    assert [f.actions for f in odd.flows if (f.table, f.priority) == (0, 100)] == [
        (BpfAction("guard", 1),)
    ]
    # Paths are relative to the file that names them; ids are global.
    assert p.programs["guard"].source == tmp_path / "common/filters/guard.c"
    assert p.programs["guard"].file == str(tmp_path / "common/common.yaml")
    assert (p.programs["guard"].prog_id, p.programs["limit"].prog_id) == (1, 7)


def test_dollar_dollar_is_a_dollar(tmp_path: Path) -> None:
    text = COMMON.replace("$blocked, value", "$$HOME, value") + (
        "switches:\n  s1: {dpid: 1, template: edge, params: {uplink: 1}}\n"
    )
    p = policy.parse(text, "p.yaml", tmp_path)
    assert [s.key for s in p.switches["s1"].seeds] == ["$HOME"]


def problems(tmp_path: Path, main: str, **files: str) -> list[str]:
    for name, text in files.items():
        write(tmp_path, name.replace("__", "/") + ".yaml", text)
    with pytest.raises(PolicyError) as info:
        policy.load(write(tmp_path, "policy.yaml", main))
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


def test_template_problems_at_once(tmp_path: Path) -> None:
    got = problems(
        tmp_path,
        """\
        version: 1
        include: [common.yaml]
        switches:
          a: {dpid: 1, template: edgy}
          b: {dpid: 2, template: edge}
          c: {dpid: 3, template: edge, params: {uplink: 1, mtu: 9000}}
          d: {dpid: 4, params: {uplink: 1}}
        """,
        common=COMMON.replace("match: {in_port: $uplink}", "match: {in_port: $uplnk}"),
    )
    assert got == [
        "policy.yaml:4:26: switch a: unknown template 'edgy' (templates: edge)",
        "policy.yaml:5:26: switch b must give template edge's parameter 'uplink'",
        "common.yaml:13:52: unknown parameter $uplnk (parameters: $uplink, $blocked, $ttl)",
        "policy.yaml:6:52: template edge has no parameter 'mtu' (parameters: uplink, blocked, ttl)",
        "policy.yaml:7:24: switch d has params but no template",
    ]


def test_include_problems(tmp_path: Path) -> None:
    got = problems(tmp_path, """\
        version: 1
        include: [a.yaml, missing.yaml]
        programs:
          guard: {source: g.c}
        switches:
          s1: {dpid: 1}
        """,
        a="version: 1\ninclude: [b.yaml]\nprograms:\n  guard: {source: x.c}\n",
        b="version: 1\ninclude: [a.yaml]\nswitches:\n  s1: {dpid: 0x5, programs: [nope]}\n",
    )  # fmt: skip
    assert got == [
        "b.yaml:2:11: include a.yaml: includes itself (policy.yaml -> a.yaml -> b.yaml -> a.yaml)",
        "policy.yaml:2:19: include missing.yaml: No such file or directory",
        "policy.yaml:4:3: program guard is also defined at a.yaml:4",
        "policy.yaml:6:3: switch s1 is also defined at b.yaml:4",
        "b.yaml:4:30: unknown program 'nope' (programs: guard)",
    ]


def test_no_switches_anywhere(tmp_path: Path) -> None:
    assert problems(tmp_path, "version: 1\ninclude: [c.yaml]\n", c="version: 1\n") == [
        "policy.yaml:1:1: the policy needs 'switches' (here or in a file it includes)"
    ]


def test_ovsdb_settings_from_template_and_switch(tmp_path: Path) -> None:
    text = """\
version: 1
templates:
  t:
    settings: {bpf-jit: false, fail-mode: secure, controllers: [tcp:10.0.0.5:6653]}
switches:
  s1:
    dpid: 1
    template: t
    ovsdb: unix:/run/openvswitch/db.sock
    bridge: br-int
    settings: {bpf-max-map-memory: 1048576, controllers: [tcp:10.0.0.5:6653, ssl:10.0.0.6:6653]}
  s2: {dpid: 2}
"""
    p = policy.parse(text, "p.yaml", tmp_path)
    s1 = p.switches["s1"]
    assert (s1.ovsdb, s1.bridge) == ("unix:/run/openvswitch/db.sock", "br-int")
    assert s1.settings == policy.OvsSettings(
        False, 1048576, "secure", ("tcp:10.0.0.5:6653", "ssl:10.0.0.6:6653")
    )
    assert s1.settings.other_config() == {"bpf-jit": "false", "bpf-max-map-memory": "1048576"}
    assert (p.switches["s2"].ovsdb, p.switches["s2"].settings) == (None, policy.OvsSettings())


def test_ovsdb_settings_problems(tmp_path: Path) -> None:
    got = problems(tmp_path, """\
        version: 1
        switches:
          s1:
            dpid: 1
            ovsdb: /run/db.sock
            settings: {bpf-jit: maybe, fail-mode: open, controllers: [10.0.0.5], mtu: 9000}
          s2: {dpid: 2, settings: {fail-mode: secure}}
        """)  # fmt: skip
    assert got == [
        "policy.yaml:6:74: unknown key 'mtu' in settings of switch s1 "
        "(allowed: bpf-jit, bpf-max-map-memory, fail-mode, controllers)",
        "policy.yaml:6:25: bpf-jit: 'maybe' is not true or false",
        "policy.yaml:6:43: fail-mode: 'open' is not secure or standalone",
        "policy.yaml:6:63: controller '10.0.0.5': give tcp:IP:PORT, ssl:IP:PORT or unix:PATH "
        "(or a passive ptcp:, pssl:, punix:)",
        "policy.yaml:5:12: switch s1 ovsdb '/run/db.sock': give an OVSDB remote, unix:PATH, "
        "tcp:IP:PORT or ssl:IP:PORT",
        "policy.yaml:7:7: switch s2 has settings but no ovsdb to apply them through",
    ]
