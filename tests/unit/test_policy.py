"""The policy schema: what it accepts, and how it names what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from okopy.policy import file as policy
from okopy.policy.file import BpfAction, PolicyError

GOOD = """\
version: 1
programs:
  guard: {source: bpf/ratelimit.c, defines: {RL_MAX_SOURCES: 1024}}
  block: {object: build/blocklist.o, id: 7}
switches:
  edge:
    dpid: 0x1
    programs: [guard, block]
    maps:
      guard:
        config: [{key: 0, value: {rate: 100, burst: 10}}]
      block:
        blocked_v4:
          - {key: "10.1.0.2", value: {}}
    flows:
      - table: 0
        priority: 10
        match: {eth_type: 0x0800, ipv4_dst: 10.1.0.0/16}
        actions: [{bpf: {prog: block, table: 1}}]
      - {table: 1, priority: 10, match: {bpf_verdict: drop}, actions: [drop]}
      - {table: 1, priority: 0, actions: [{bpf: {prog: guard}}, normal]}
"""


def test_good_policy(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(GOOD)
    p = policy.load(f)
    guard, block = p.programs["guard"], p.programs["block"]
    assert guard.source == tmp_path / "bpf/ratelimit.c"
    assert guard.defines == ("RL_MAX_SOURCES=1024",)
    assert block.prog_id == 7
    assert guard.prog_id == 1
    sw = p.switches["edge"]
    assert p.switch_by_dpid(1) is sw
    assert sw.programs == ("guard", "block")
    assert [(s.program, s.map, s.key) for s in sw.seeds] == [
        ("guard", "config", 0),
        ("block", "blocked_v4", "10.1.0.2"),
    ]
    first, second, third = sw.flows
    assert first.match == (("eth_type", 0x800), ("ipv4_dst", "10.1.0.0/16"))
    assert first.actions == (BpfAction("block", 1),)
    assert second.match == (("bpf_verdict", "drop"),)
    assert third.actions == (BpfAction("guard", None), "normal")
    assert third.priority == 0


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        policy.parse(textwrap.dedent(text), "p.yaml")
    return [str(p) for p in info.value.problems]


BASE = """\
version: 1
programs:
  guard: {source: g.c}
switches:
  edge:
    dpid: 1
    programs: [guard]
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    colour: blue\n", "p.yaml:8:5: unknown key 'colour' in switch edge"),
        ("    flows: [{actions: [jump]}]\n", "unknown action 'jump'"),
        ("    flows: [{actions: [{bpf: {prog: nope}}]}]\n", "bpf prog 'nope' is not loaded"),
        ("    flows: [{match: {ipv4_src: 10.0.0.1}, actions: [drop]}]\n",
         "ipv4_src needs eth_type: 0x800"),
        ("    flows: [{match: {tcp_dst: 80, eth_type: 0x800}, actions: [drop]}]\n",
         "tcp_dst needs ip_proto: 6"),
        ("    flows: [{match: {colour: 1}, actions: [drop]}]\n", "unknown match field 'colour'"),
        ("    flows: [{match: {bpf_verdict: maybe}, actions: [drop]}]\n", "'maybe' is neither a verdict name (none, aborted, drop, pass, tx, redirect) nor a number"),
        ("    flows: [{match: {eth_src: 'zz'}, actions: [drop]}]\n", "not a MAC address"),
        ("    flows: [{table: 300, actions: [drop]}]\n", "table must be between 0 and 0xfe"),
        ("    flows: [{table: 2, actions: [{goto_table: 1}]}]\n", "must be after this flow's table 2"),
        ("    flows: [{table: 2, actions: [{bpf: {prog: guard, table: 2}}]}]\n",
         "bpf table 2 must be after"),
        ("    flows: [{actions: [{bpf: {prog: guard, drop_unless: maybe}}]}]\n",
         "p.yaml:8:57: bpf drop_unless 'maybe': a verdict name (aborted, drop, pass, tx, "
         "redirect) or a number from 0 to 254"),
        ("    flows: [{actions: [{bpf: {prog: guard, drop_unless: 255}}]}]\n",
         "bpf drop_unless 255: a verdict name"),
        ("    flows: [{actions: [{bpf: {prog: guard, drop_unless: none}}]}]\n",
         "bpf drop_unless 'none': a verdict name"),
        ("    flows: [{actions: [drop]}, {actions: [normal]}]\n", "same table, priority and match"),
        ("    flows: [{priority: 5}]\n", "a flow needs 'actions'"),
        ("    maps: {other: {m: []}}\n", "maps for 'other', which switch edge does not load"),
        ("    maps: {guard: {config: [{key: 0}]}}\n", "needs 'value'"),
        ("    maps: {guard: {config: {key: 0}}}\n", "entries must be a list"),
    ],
)  # fmt: skip
def test_switch_problems(extra: str, message: str) -> None:
    found = problems(BASE + extra)
    assert any(message in p for p in found), found


def test_all_problems_reported_at_once() -> None:
    found = problems(
        """\
        version: 2
        programs:
          a: {source: x.c, object: x.o}
          b: {id: 0, source: y.c}
        switches:
          s1: {dpid: 1, programs: [a, c]}
          s2: {dpid: 1}
        """
    )
    assert "p.yaml:1:10: version must be 1" in found
    assert any("needs exactly one of 'source' or 'object'" in p for p in found)
    assert any("program b id must be between 1" in p for p in found)
    assert any("unknown program 'c'" in p for p in found)
    assert any("dpid 0x1 is also switch s1" in p for p in found)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the policy is empty"),
        ("[1, 2]", "the policy must be a mapping"),
        ("version: 1\nswitches: {a: {dpid: 1}\n", "not valid YAML"),
        ("version: 1\n", "the policy needs 'switches'"),
        ("version: 1\nswitches: []\n", "switches must be a mapping"),
        ("version: 1\nprograms: {a: {source: a.c, id: 3}, b: {source: b.c, id: 3}}\n"
         "switches: {}\n", "id 3 is already used by a"),
    ],
)  # fmt: skip
def test_document_problems(text: str, message: str) -> None:
    found = problems(text)
    assert any(message in p for p in found), found


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="No such file"):
        policy.load(tmp_path / "none.yaml")


def test_addresses_with_colons_stay_strings() -> None:
    """YAML 1.1 reads 12:34:56:12:34:56 as a base-60 number; a policy
    means a MAC address (and 1:0:0:0:0:0:0:1 an IPv6 address)."""
    p = policy.parse(
        "version: 1\n"
        "programs: {g: {source: g.c}}\n"
        "switches:\n"
        "  s1:\n"
        "    dpid: 1\n"
        "    programs: [g]\n"
        "    maps:\n"
        "      g:\n"
        "        macs: [{key: 12:34:56:12:34:56, value: {seen: 10:20}}]\n"
        "        v6: [{key: 1:0:0:0:0:0:0:1, value: 7}]\n"
    )
    seeds = {s.map: (s.key, s.value) for s in p.switches["s1"].seeds}
    assert seeds == {
        "macs": ("12:34:56:12:34:56", {"seen": "10:20"}),
        "v6": ("1:0:0:0:0:0:0:1", 7),
    }


@pytest.mark.parametrize(
    ("word", "verdict"), [("pass", 2), ("aborted", 0), ("7", 7), ("0x10", 16), ("254", 254)]
)
def test_bpf_drop_unless(word: str, verdict: int) -> None:
    text = (
        BASE
        + f"    flows: [{{actions: [{{bpf: {{prog: guard, drop_unless: {word}}}}}, {{output: 2}}]}}]\n"
    )
    flow = policy.parse(text, "p.yaml").switches["edge"].flows[0]
    assert flow.actions == (BpfAction("guard", None, verdict), ("output", 2))
