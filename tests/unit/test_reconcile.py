"""The controller core against a fake switch: convergence, no duplicates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from okopy.bpf.btf import Btf, map_definitions
from okopy.bpf.elf import sections
from okopy.bpf.toolchain import compile_program
from okopy.controller import intents as it
from okopy.controller.reconcile import Observed, ObservedProgram, reconcile
from okopy.policy import file as policy
from okopy.policy.desired import (
    COOKIE_OKOPY,
    BuiltProgram,
    DesiredSwitch,
    Flow,
    desired_switch,
)

ROOT = Path(__file__).resolve().parent.parent.parent

POLICY = """\
version: 1
programs:
  guard: {source: bpf/ratelimit.c}
  block: {source: bpf/blocklist.c, id: 5}
switches:
  edge:
    dpid: 1
    programs: [guard, block]
    maps:
      guard:
        config: [{key: 0, value: {rate: 100, burst: 10}}]
      block:
        blocked_v4: [{key: 10.1.0.2, value: {}}]
    flows:
      - {table: 0, priority: 10, match: {eth_type: 0x800}, actions: [{bpf: {prog: block, table: 1}}]}
      - {table: 1, priority: 10, match: {bpf_verdict: drop}, actions: [drop]}
      - {table: 1, priority: 0, actions: [{bpf: {prog: guard}}, normal]}
"""


class FakeSwitch:
    """Applies intents the way the patched switch does (no OpenFlow).

    Loading a program, fresh or as a replacement, gives it empty maps,
    except maps pinned by name, which keep their contents; so a needless
    (re)load or seed write shows in the maps afterwards."""

    def __init__(self, pinned: frozenset[str] = frozenset()) -> None:
        self.pinned = pinned
        self.programs: dict[int, ObservedProgram] = {}
        self.maps: dict[tuple[int, str], dict[bytes, bytes]] = {}
        self.flows: dict[tuple[int, int, tuple[tuple[str, str], ...]], Flow] = {}
        self.loads = 0

    def observed(self) -> Observed:
        return Observed(dict(self.programs), frozenset(self.flows.values()))

    def apply(self, intents: list[it.Intent]) -> None:
        for i in intents:
            if isinstance(i, it.LoadProgram):
                if i.prog_id in self.programs and not i.replace:
                    raise AssertionError(f"duplicate load of {i.prog_id}")
                self.programs[i.prog_id] = ObservedProgram(i.prog_id, i.name, i.cookie)
                self.maps = {
                    (pid, name): entries for (pid, name), entries in self.maps.items()
                    if pid != i.prog_id or name in self.pinned
                }  # fmt: skip
                self.loads += 1
            elif isinstance(i, it.UnloadProgram):
                del self.programs[i.prog_id]
                self.flows = {
                    k: f for k, f in self.flows.items()
                    if not any(a.startswith(f"bpf:{i.prog_id}") for a in f.actions)
                }  # fmt: skip
            elif isinstance(i, it.UpdateMap):
                assert i.prog_id in self.programs
                self.maps.setdefault((i.prog_id, i.map), {})[i.key] = i.value
            elif isinstance(i, it.DeleteMapEntry):
                self.maps.get((i.prog_id, i.map), {}).pop(i.key, None)
            elif isinstance(i, it.AddFlow):
                for a in i.flow.actions:
                    if a.startswith("bpf:"):
                        assert int(a.split(":")[1]) in self.programs, "flow before program"
                self.flows[i.flow.key] = i.flow
            elif isinstance(i, it.DeleteFlow):
                del self.flows[i.flow.key]

    def restart(self) -> None:
        """ovs-vswitchd restarted: programs, maps and flows are gone."""
        self.__init__(self.pinned)  # type: ignore[misc]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltProgram]:
    out = {}
    d = tmp_path_factory.mktemp("b")
    for name, src, pid in (("guard", "ratelimit", 1), ("block", "blocklist", 5)):
        elf = compile_program(ROOT / f"bpf/{src}.c", d / f"{src}.o").read_bytes()
        btf = Btf.parse(sections(elf)[".BTF"].data)
        out[name] = BuiltProgram(name, pid, elf, btf, {m.name: m for m in map_definitions(btf)})
    return out


def pinned(built: dict[str, BuiltProgram]) -> frozenset[str]:
    return frozenset(m.name for b in built.values() for m in b.maps.values() if m.pinning)


def desired(built: dict[str, BuiltProgram], text: str = POLICY) -> DesiredSwitch:
    p = policy.parse(text)
    return desired_switch(p, p.switches["edge"], built)


def converge(
    sw: FakeSwitch, want: DesiredSwitch, prev: DesiredSwitch | None = None
) -> list[it.Intent]:
    steps = reconcile(want, sw.observed(), prev)
    sw.apply(steps)
    assert reconcile(want, sw.observed(), want) == [], "did not converge"
    return steps


def test_first_connect_loads_seeds_and_adds(built: dict[str, BuiltProgram]) -> None:
    sw, want = FakeSwitch(pinned(built)), desired(built)
    steps = converge(sw, want)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["LoadProgram", "LoadProgram", "UpdateMap", "UpdateMap"] + ["AddFlow"] * 3
    assert sw.maps[5, "blocked_v4"] == {bytes([10, 1, 0, 2]): bytes(16)}
    assert sorted(f.actions for f in sw.flows.values()) == [
        ("bpf:1", "normal"),
        ("bpf:5:1",),
        ("drop",),
    ]
    assert all(f.cookie == COOKIE_OKOPY for f in sw.flows.values())


def test_controller_restart_keeps_live_state(built: dict[str, BuiltProgram]) -> None:
    sw, want = FakeSwitch(pinned(built)), desired(built)
    converge(sw, want)
    # What the switch holds by now that no policy says: entries the filter
    # learnt, and a seeded entry changed at run time (through the API).
    sw.maps[1, "sources"] = {b"live": b"state"}
    key, runtime = built["guard"].encode_entry("config", 0, {"rate": 5, "burst": 1})
    sw.maps[1, "config"][key] = runtime
    live = {k: dict(v) for k, v in sw.maps.items()}
    steps = reconcile(want, sw.observed(), previous=None)
    sw.apply(steps)
    assert sw.maps == live, "a controller restart overwrote live map state"
    assert sw.loads == 2, "a controller restart reloaded programs"
    assert set(sw.flows.values()) == set(want.flows)
    assert steps == []


def test_switch_restart_restores_everything(built: dict[str, BuiltProgram]) -> None:
    sw, want = FakeSwitch(pinned(built)), desired(built)
    converge(sw, want)
    sw.restart()
    converge(sw, want, prev=want)
    assert set(sw.programs) == {1, 5}
    assert sw.maps == {
        (1, "config"): dict([built["guard"].encode_entry("config", 0, {"rate": 100, "burst": 10})]),
        (5, "blocked_v4"): {bytes([10, 1, 0, 2]): bytes(16)},
    }
    assert set(sw.flows.values()) == set(want.flows)


def test_policy_reload_applies_only_the_difference(
    built: dict[str, BuiltProgram],
) -> None:
    sw, old = FakeSwitch(pinned(built)), desired(built)
    converge(sw, old)
    text = (
        POLICY.replace("rate: 100", "rate: 7")
        .replace(
            "blocked_v4: [{key: 10.1.0.2, value: {}}]",
            "blocked_v4: [{key: 10.9.9.9, value: {}}]",
        )
        .replace(
            "{table: 1, priority: 10, match: {bpf_verdict: drop}, actions: [drop]}",
            "{table: 1, priority: 10, match: {bpf_verdict: drop}, actions: [controller]}",
        )
    )
    new = desired(built, text)
    steps = converge(sw, new, prev=old)
    assert not any(isinstance(s, it.LoadProgram) for s in steps)
    assert [type(s).__name__ for s in steps] == [
        "UpdateMap",
        "UpdateMap",
        "DeleteMapEntry",
        "AddFlow",
    ]
    assert sw.maps[5, "blocked_v4"] == {bytes([10, 9, 9, 9]): bytes(16)}


def test_a_seed_removed_from_an_array_is_zeroed_not_deleted(
    built: dict[str, BuiltProgram],
) -> None:
    """Array entries cannot be deleted (the switch refuses, as the kernel
    does): a removed seed's entry goes back to zeros."""
    sw, old = FakeSwitch(pinned(built)), desired(built)
    converge(sw, old)
    text = POLICY.replace("        config: [{key: 0, value: {rate: 100, burst: 10}}]\n", "")
    text = text.replace("      guard:\n", "")
    steps = converge(sw, desired(built, text), prev=old)
    assert [type(s).__name__ for s in steps] == ["UpdateMap"]
    assert sw.maps[1, "config"] == {bytes(4): bytes(built["guard"].maps["config"].value_size)}


def test_a_reload_writes_map_by_map_in_policy_order_and_deletes_in_reverse(
    built: dict[str, BuiltProgram],
) -> None:
    """Map by map in the order the new policy lists them, writes in its
    order, then deletions in the reverse of the old one's (the ACL's maps
    depend on it: okopy.acl.compile.ordered_changes())."""
    maps = (
        "      block:\n"
        "        blocked_v6: [{key: '2001:db8::1', value: {}}, {key: '2001:db8::2', value: {}}]\n"
        "        blocked_v4: [{key: 10.1.0.2, value: {}}, {key: 10.1.0.3, value: {}}]\n"
    )
    old_text = POLICY.replace("      block:\n        blocked_v4: [{key: 10.1.0.2, value: {}}]\n",
                              maps)  # fmt: skip
    sw, old = FakeSwitch(pinned(built)), desired(built, old_text)
    converge(sw, old)
    new_text = old_text.replace(
        maps,
        "      block:\n"
        "        blocked_v4: [{key: 10.7.0.1, value: {}}, {key: 10.7.0.2, value: {}}]\n"
        "        blocked_v6: [{key: '2001:db8::7', value: {}}]\n",
    )
    steps = converge(sw, desired(built, new_text), prev=old)
    changes = [(type(s).__name__, s.map, s.key) for s in steps
               if isinstance(s, it.UpdateMap | it.DeleteMapEntry)]  # fmt: skip
    v6 = [bytes.fromhex("20010db8" + "0" * 22 + n) for n in ("01", "02", "07")]
    assert changes == [
        ("UpdateMap", "blocked_v4", bytes([10, 7, 0, 1])),
        ("UpdateMap", "blocked_v4", bytes([10, 7, 0, 2])),
        ("DeleteMapEntry", "blocked_v4", bytes([10, 1, 0, 3])),
        ("DeleteMapEntry", "blocked_v4", bytes([10, 1, 0, 2])),
        ("UpdateMap", "blocked_v6", v6[2]),
        ("DeleteMapEntry", "blocked_v6", v6[1]),
        ("DeleteMapEntry", "blocked_v6", v6[0]),
    ]


def test_removed_program_and_flows_go_away(built: dict[str, BuiltProgram]) -> None:
    sw, old = FakeSwitch(pinned(built)), desired(built)
    converge(sw, old)
    text = POLICY.replace("programs: [guard, block]", "programs: [guard]")
    text = text.replace("      block:\n        blocked_v4: [{key: 10.1.0.2, value: {}}]\n", "")
    text = text.replace(
        "      - {table: 0, priority: 10, match: {eth_type: 0x800}, actions: [{bpf: {prog: block, table: 1}}]}\n",
        "",
    )
    steps = converge(sw, desired(built, text), prev=old)
    assert [type(s).__name__ for s in steps] == ["DeleteFlow", "UnloadProgram"]
    assert set(sw.programs) == {1}


def test_changed_program_is_replaced_not_duplicated(
    built: dict[str, BuiltProgram],
) -> None:
    sw, old = FakeSwitch(pinned(built)), desired(built)
    converge(sw, old)
    changed = dict(built)
    changed["guard"] = dataclasses.replace(built["guard"], elf=built["guard"].elf + b"\0")
    steps = converge(sw, desired(changed), prev=old)
    loads = [s for s in steps if isinstance(s, it.LoadProgram)]
    assert [(s.prog_id, s.replace) for s in loads] == [(1, True)]
    # The replacement started with an empty config: its seed went in again.
    seed = built["guard"].encode_entry("config", 0, {"rate": 100, "burst": 10})
    assert sw.maps.get((1, "config")) == dict([seed])


def test_foreign_flows_are_left_alone(built: dict[str, BuiltProgram]) -> None:
    sw, want = FakeSwitch(pinned(built)), desired(built)
    converge(sw, want)
    mine = Flow(5, 1, (), ("drop",), cookie=0x1234)
    sw.flows[mine.key] = mine
    assert reconcile(want, sw.observed(), want) == []


def test_bad_seed_names_line(built: dict[str, BuiltProgram]) -> None:
    text = POLICY.replace("{key: 10.1.0.2, value: {}}", "{key: 10.1.0.2, value: {hits: 1}}")
    with pytest.raises(ValueError, match=r"line 13: .*unknown field 'hits'"):
        desired(built, text)
