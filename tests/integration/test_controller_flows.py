"""The controller deploys a policy's flows to a real switch and reconciles
on every (re)connection: no duplicates, restored after a switch restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from okopy.lab.controller import ControllerProcess
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE, HostFactory

POLICY = """\
version: 1
switches:
  s1:
    dpid: 0x1
    flows:
      - {table: 0, priority: 10, match: {in_port: 1}, actions: [{output: 2}]}
      - {table: 0, priority: 10, match: {in_port: 2}, actions: [{output: 1}]}
      - {table: 0, priority: 20, match: {eth_type: 0x800, ipv4_dst: 10.0.0.9}, actions: [drop]}
"""


def okopy_flows(switch: OvsInstance) -> list[str]:
    dump = switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)
    return sorted(
        ln.split("actions=")[0].split("priority=")[1] + ln.split("actions=")[1]
        for ln in dump.splitlines()
        if "cookie=0x6f6b6f7079" in ln
    )


@pytest.fixture
def controlled(
    switch: OvsInstance, tmp_path: Path
) -> Iterator[tuple[OvsInstance, ControllerProcess]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert switch.netns is not None
    ctl = ControllerProcess(policy, tmp_path / "controller.log", switch.netns)
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    ctl.start()
    try:
        ctl.wait_for(r"policy: switch s1", timeout=60)
        switch.vsctl("set-controller", BRIDGE, ctl.target)
        switch.vsctl("set", "controller", BRIDGE, "max_backoff=1000")
        yield switch, ctl
    finally:
        ctl.stop()


def test_flows_deployed_and_kept_across_restarts(
    controlled: tuple[OvsInstance, ControllerProcess], add_host: HostFactory
) -> None:
    switch, ctl = controlled
    h1 = add_host("h1", "10.0.0.1/24", 1)
    h2 = add_host("h2", "10.0.0.2/24", 2)
    ctl.wait_for(r"switch 0x1 reconciled: 3 AddFlow")
    first = okopy_flows(switch)
    assert len(first) == 3
    assert h1.ping(h2.address, count=3, deadline=8).received == 3

    # The controller goes away: the switch keeps forwarding (fail_mode=secure).
    ctl.stop()
    assert h1.ping(h2.address, count=2, deadline=5).received == 2

    # It comes back: it finds everything in place and sends nothing.
    ctl.start()
    ctl.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=60)
    assert okopy_flows(switch) == first

    # ovs-vswitchd restarts with empty tables: the controller restores them.
    switch._stop_daemon("ovs-vswitchd")
    switch._start_daemon("ovs-vswitchd", [str(switch.tools.vswitchd), f"unix:{switch.db_socket}"])
    ctl.wait_for(r"switch 0x1 reconciled: 3 AddFlow", timeout=60)
    assert okopy_flows(switch) == first
    assert h1.ping(h2.address, count=3, deadline=8).received == 3


def test_foreign_flows_survive(controlled: tuple[OvsInstance, ControllerProcess]) -> None:
    switch, ctl = controlled
    ctl.wait_for(r"switch 0x1 reconciled")
    switch.ofctl("-O", "OpenFlow13", "add-flow", BRIDGE, "cookie=0x42,priority=5,actions=drop")
    ctl.stop()
    ctl.start()
    ctl.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=60)
    assert "cookie=0x42" in switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)


def test_sighup_reload_applies_only_the_difference(
    controlled: tuple[OvsInstance, ControllerProcess], tmp_path: Path
) -> None:
    switch, ctl = controlled
    ctl.wait_for(r"switch 0x1 reconciled: 3 AddFlow")
    before = okopy_flows(switch)
    # One flow changes its actions, one is removed, one is added.
    ctl.policy.write_text(
        POLICY.replace("match: {in_port: 2}, actions: [{output: 1}]",
                       "match: {in_port: 2}, actions: [controller]")
        .replace("      - {table: 0, priority: 20, match: {eth_type: 0x800, ipv4_dst: 10.0.0.9}, actions: [drop]}\n",
                 "      - {table: 0, priority: 30, match: {eth_type: 0x800, ipv4_dst: 10.0.0.8}, actions: [drop]}\n")
    )  # fmt: skip
    assert ctl.proc is not None
    os.kill(ctl.proc.pid, signal.SIGHUP)
    ctl.wait_for(r"policy reloaded from")
    line = ctl.wait_for(r"switch 0x1 reconciled: ")
    assert "2 AddFlow, 1 DeleteFlow" in line, line
    after = okopy_flows(switch)
    assert len(after) == 3
    assert after != before
    assert any("nw_dst=10.0.0.8" in f for f in after), after
    assert not any("nw_dst=10.0.0.9" in f for f in after), after

    # A broken policy is refused and the running one kept.
    ctl.policy.write_text("version: 1\nswitches: {s1: {dpid: 1, colour: red}}\n")
    os.kill(ctl.proc.pid, signal.SIGHUP)
    ctl.wait_for(r"policy reload refused, keeping the running policy")
    assert okopy_flows(switch) == after
