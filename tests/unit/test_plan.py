"""Reconciliation intents as changes people read (`okopy policy diff`)."""

from __future__ import annotations

from okopy.controller import intents as it
from okopy.controller.plan import change_text, describe, flow_text, summary
from okopy.controller.reconcile import Observed, ObservedProgram, reconcile
from okopy.policy.desired import BuiltProgram, Flow
from tests.unit.test_reconcile import POLICY, FakeSwitch, built, desired, pinned

__all__ = ["built"]  # the fixture, shared with test_reconcile


def test_flow_text_is_ovs_ofctl_syntax() -> None:
    f = Flow(1, 100, (("bpf_verdict", "1"), ("eth_type", "2048")), ("bpf:5:2", "normal"))
    assert flow_text(f) == "table=1,priority=100,bpf_verdict=drop,eth_type=0x0800 " \
        "actions=bpf(prog=5,table=2),NORMAL"  # fmt: skip
    assert flow_text(Flow(0, 0, (), ())) == "table=0,priority=0 actions=drop"
    assert flow_text(Flow(0, 1, (("bpf_verdict", "77"),), ("output:3", "goto_table:4"))) == (
        "table=0,priority=1,bpf_verdict=77 actions=output:3,goto_table:4"
    )


def test_first_connection(built: dict[str, BuiltProgram]) -> None:
    want = desired(built)
    steps = reconcile(want, Observed(), None)
    changes = [describe(s, want, Observed()) for s in steps]
    assert changes[0] == {"change": "load program", "prog": 1, "name": "guard"}
    assert {"change": "write map entry", "prog": 5, "map": "blocked_v4",
            "key": "10.1.0.2", "value": {"packets": 0, "bytes": 0}} in changes  # fmt: skip
    assert summary(changes) == "3 add flow, 2 load program, 2 write map entry"
    texts = [change_text(c) for c in changes]
    assert "write map entry: program 1 map config key 0 value " \
        '{"rate": 100, "burst": 10}' in texts  # fmt: skip
    assert "add flow: table=0,priority=10,eth_type=0x0800 actions=bpf(prog=5,table=1)" in texts


def test_an_edited_policy(built: dict[str, BuiltProgram]) -> None:
    """What a reload would do: a changed seed, a changed and a removed flow,
    a program gone (and one the policy never had)."""
    sw, old = FakeSwitch(pinned(built)), desired(built)
    sw.apply(reconcile(old, sw.observed(), None))
    sw.programs[9] = ObservedProgram(9, "by-hand", 0)
    edited = (
        POLICY.replace("rate: 100", "rate: 200")
        .replace("actions: [drop]", "actions: [controller]")
        .replace("      - {table: 1, priority: 0, actions: [{bpf: {prog: guard}}, normal]}\n", "")
    )
    new = desired(built, edited)
    steps = reconcile(new, sw.observed(), old)
    changes = [describe(s, new, sw.observed()) for s in steps]
    texts = [change_text(c) for c in changes]
    assert texts == [
        'write map entry: program 1 map config key 0 value {"rate": 200, "burst": 10}',
        "change flow: table=1,priority=10,bpf_verdict=drop actions=CONTROLLER",
        "delete flow: table=1,priority=0 actions=bpf(prog=1),NORMAL",
        "unload program 9 (by-hand)",
    ]
    assert summary([]) == "nothing to do"
    assert describe(it.UnloadProgram(42), new, Observed()) == {
        "change": "unload program", "prog": 42, "name": "",
    }  # fmt: skip
