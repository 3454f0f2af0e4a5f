"""okopy lab: up, exec, status and down with real namespaces and traffic."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from okopy import lab, netns
from okopy.ovs.instance import OvsTools, _pid_alive
from okopy.paths import Layout

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def line_lab(layout: Layout, ovs_tools: OvsTools) -> Iterator[lab.Lab]:
    topo = lab.load_topology(ROOT / "examples/lab.yaml")
    name = f"t{os.getpid() % 100000}"
    the_lab = lab.Lab(layout, name, log=lambda m: None)
    the_lab.up(lab.Topology(name, topo.switches, topo.hosts, topo.links))
    try:
        yield the_lab
    finally:
        the_lab.down()


def test_hosts_reach_each_other_across_switches(line_lab: lab.Lab) -> None:
    h1 = line_lab.host("h1")
    assert h1.ping("10.0.0.4", count=3, deadline=8).received == 3
    status = line_lab.status()
    assert status["switches"]["s2"]["dpid"] == "0x2"
    assert all(d["running"] for d in status["daemons"].values())
    assert status["hosts"]["h4"]["ip"] == "10.0.0.4/24"


def test_second_up_is_refused(line_lab: lab.Lab) -> None:
    topo = lab.load_topology(ROOT / "examples/lab.yaml")
    with pytest.raises(lab.LabError, match="already up"):
        lab.Lab(line_lab.layout, line_lab.state.name).up(topo)


def test_down_after_a_crash_cleans_everything(layout: Layout, ovs_tools: OvsTools) -> None:
    topo = lab.load_topology(ROOT / "examples/lab.yaml")
    name = f"c{os.getpid() % 100000}"
    lab.Lab(layout, name, log=lambda m: None).up(
        lab.Topology(name, topo.switches, topo.hosts, topo.links)
    )
    survivor = lab.Lab(layout, name, log=lambda m: None)
    survivor.load()
    pids = dict(survivor.state.pids)
    namespaces = list(survivor.state.namespaces)
    # The switch dies hard, and whoever started the lab is gone too.
    os.kill(pids["ovs-vswitchd"], signal.SIGKILL)
    lab.Lab(layout, name, log=lambda m: None).down()
    assert not any(_pid_alive(p) for p in pids.values())
    assert not set(namespaces) & netns.existing()
    assert not lab.state_dir(layout, name).exists()
