"""okopy lab: up, exec, status and down with real namespaces and traffic."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from okopy import netns
from okopy.bpf.toolchain import compile_program
from okopy.lab import testbed
from okopy.lab.dpdk import NR_HUGEPAGES, PEER_MB, RUNTIME_DIR
from okopy.ovs.instance import OvsTools
from okopy.paths import Layout
from okopy.process import pid_alive

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def line_lab(layout: Layout, ovs_tools: OvsTools) -> Iterator[testbed.Lab]:
    topo = testbed.load_topology(ROOT / "examples/lab.yaml")
    name = f"t{os.getpid() % 100000}"
    the_lab = testbed.Lab(layout, name, log=lambda m: None)
    the_lab.up(testbed.Topology(name, topo.switches, topo.hosts, topo.links))
    try:
        yield the_lab
    finally:
        the_lab.down()


def test_hosts_reach_each_other_across_switches(line_lab: testbed.Lab) -> None:
    h1 = line_lab.host("h1")
    assert h1.ping("10.0.0.4", count=3, deadline=8).received == 3
    status = line_lab.status()
    assert status["switches"]["s2"]["dpid"] == "0x2"
    assert all(d["running"] for d in status["daemons"].values())
    assert status["hosts"]["h4"]["ip"] == "10.0.0.4/24"
    # h4's port is an AF_XDP socket polled by a PMD thread.
    assert status["hosts"]["h4"]["port_type"] == "afxdp"
    rxqs = line_lab.switch().appctl("ovs-vswitchd", "dpif-netdev/pmd-rxq-show")
    assert "port: s2-p2 " in rxqs, rxqs


def test_second_up_is_refused(line_lab: testbed.Lab) -> None:
    topo = testbed.load_topology(ROOT / "examples/lab.yaml")
    with pytest.raises(testbed.LabError, match="already up"):
        testbed.Lab(line_lab.layout, line_lab.state.name).up(topo)


def test_down_after_a_crash_cleans_everything(layout: Layout, ovs_tools: OvsTools) -> None:
    topo = testbed.load_topology(ROOT / "examples/lab.yaml")
    name = f"c{os.getpid() % 100000}"
    testbed.Lab(layout, name, log=lambda m: None).up(
        testbed.Topology(name, topo.switches, topo.hosts, topo.links)
    )
    survivor = testbed.Lab(layout, name, log=lambda m: None)
    survivor.load()
    pids = dict(survivor.state.pids)
    namespaces = list(survivor.state.namespaces)
    # The switch dies hard, and whoever started the lab is gone too.
    os.kill(pids["ovs-vswitchd"], signal.SIGKILL)
    testbed.Lab(layout, name, log=lambda m: None).down()
    assert not any(pid_alive(p) for p in pids.values())
    assert not set(namespaces) & netns.existing()
    assert not testbed.state_dir(layout, name).exists()


POLICY = """\
version: 1
switches:
  s1:
    dpid: 0x1
    flows:
      - {table: 0, priority: 10, match: {in_port: 1}, actions: [{output: 2}]}
      - {table: 0, priority: 10, match: {in_port: 2}, actions: [{output: 1}]}
"""


def test_lab_with_controller(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    topo_file = tmp_path / "lab.yaml"
    topo_file.write_text(
        "switches: {s1: {dpid: 0x1}}\n"
        "hosts:\n"
        "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
        "  h2: {switch: s1, port: 2, ip: 10.0.0.2/24}\n"
        "controller: {policy: policy.yaml, api_port: 0}\n"  # any free port
    )
    topo = testbed.load_topology(topo_file)
    assert topo.controller == testbed.LabController(str(tmp_path / "policy.yaml"), 0, 6653)
    name = f"k{os.getpid() % 100000}"
    the_lab = testbed.Lab(layout, name, log=lambda m: None)
    the_lab.up(testbed.Topology(name, topo.switches, topo.hosts, topo.links, topo.controller))
    try:
        ctl_pid = the_lab.state.pids["controller"]
        assert the_lab.host("h1").ping("10.0.0.2", count=2, deadline=8).received == 2
        out = subprocess.run(the_lab.ctl_argv(["switches", "--json"]), capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        (sw,) = json.loads(out)
        assert (sw["dpid"], sw["connected"], sw["flows"]) == (1, True, 2)

        # state.json says where the API is and which token it takes; with
        # those, okopy reaches it from the host, outside the lab's namespaces.
        state = json.loads((testbed.state_dir(layout, name) / "state.json").read_text())
        host, _, port = state["api"].rpartition(":")
        assert (host, int(port) > 0) == ("127.0.0.1", True)
        assert Path(state["api_token_file"]).read_text().strip()
        assert the_lab.api_env() == {
            "OKOPY_API": state["api"],
            "OKOPY_API_TOKEN_FILE": state["api_token_file"],
        }
        assert the_lab.status()["api"] == {
            "address": state["api"],
            "token_file": state["api_token_file"],
        }
        env = {**os.environ, **the_lab.api_env()}
        out = subprocess.run([sys.executable, "-m", "okopy", "prog", "list", "--dpid", "0x1",
                              "--json"], env=env, capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        assert json.loads(out) == []
        # Without the token, a change is refused, naming the flag and the variable.
        del env["OKOPY_API_TOKEN_FILE"]
        refused = subprocess.run([sys.executable, "-m", "okopy", "map", "delete", "--dpid",
                                  "0x1", "1", "m", "0"], env=env, capture_output=True,
                                 text=True, check=False)  # fmt: skip
        assert refused.returncode == 1
        assert "401" in refused.stderr
        assert "--api-token-file FILE or set OKOPY_API_TOKEN_FILE" in refused.stderr
    finally:
        the_lab.down()
    assert not pid_alive(ctl_pid)


def one_switch_lab(layout: Layout, prefix: str, n_hosts: int) -> testbed.Lab:
    """A lab of switch s1 and hosts h1.. on its ports 1.. (10.0.0.I/24),
    up; its name is 'prefix' and this process's pid."""
    name = f"{prefix}{os.getpid() % 100000}"
    the_lab = testbed.Lab(layout, name, log=lambda m: None)
    hosts = tuple(testbed.LabHost(f"h{i}", "s1", i, f"10.0.0.{i}/24")
                  for i in range(1, n_hosts + 1))  # fmt: skip
    the_lab.up(testbed.Topology(name, (testbed.LabSwitch("s1", 1),), hosts))
    return the_lab


def test_ofctl_and_env_reach_the_lab(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    """From any directory: `okopy lab ofctl NAME ...`, and the patched
    ovs-ofctl / ovs-vsctl after `eval "$(okopy lab env NAME)"`."""
    the_lab = one_switch_lab(layout, "o", 1)
    name = the_lab.state.name
    okopy = [sys.executable, "-m", "okopy"]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=False,
                              timeout=60)  # fmt: skip

    try:
        compile_program(ROOT / "bpf/blocklist.c", tmp_path / "block.o")
        load = run([*okopy, "lab", "ofctl", name, "load-bpf-prog", "s1", "7", "block.o",
                    "name=block"])  # fmt: skip
        assert load.returncode == 0, load.stderr
        dump = run([*okopy, "lab", "ofctl", name, "dump-bpf-progs", "s1"])
        assert dump.returncode == 0, dump.stderr
        assert "OKOPYT_PROG_LIST_REPLY (OF1.3)" in dump.stdout
        assert 'prog=7 name="block"' in dump.stdout, dump.stdout
        script = (
            f'eval "$({shlex.join(okopy)} lab env {name})" && command -v ovs-ofctl && '
            "ovs-ofctl -O OpenFlow13 dump-bpf-progs s1 && ovs-vsctl list-br"
        )
        sh = run(["bash", "-c", script])
        assert sh.returncode == 0, sh.stderr
        which, *rest = sh.stdout.splitlines()
        assert which == str(ovs_tools.ofctl.absolute())
        assert 'prog=7 name="block"' in sh.stdout
        assert rest[-1] == "s1"
        other = run([*okopy, "lab", "ofctl", name + "x", "show", "s1"])
        assert other.returncode == 1
        assert f"lab '{name}x' is not running; running: " in other.stderr
        assert name in other.stderr.split("running: ")[1].strip().split(", ")
    finally:
        the_lab.down()


def test_tracelog_shows_the_programs_trace_printk(
    layout: Layout, ovs_tools: OvsTools, tmp_path: Path
) -> None:
    """`okopy lab tracelog NAME`: bpf_trace_printk() lines of a program the
    switch runs, read from its log, as `bpftool prog tracelog`."""
    the_lab = one_switch_lab(layout, "g", 2)
    name = the_lab.state.name
    okopy = [sys.executable, "-m", "okopy"]

    def run(*argv: str) -> str:
        proc = subprocess.run([*okopy, *argv], cwd=tmp_path, capture_output=True, text=True,
                              check=False, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    try:
        compile_program(ROOT / "tests/progs/trace_ports.c", tmp_path / "tp.o")
        run("lab", "ofctl", name, "load-bpf-prog", "s1", "3", "tp.o")
        run("lab", "ofctl", name, "add-flow", "s1", "table=0,udp,actions=bpf(prog=3,table=1)")
        run("lab", "ofctl", name, "add-flow", "s1", "table=1,actions=NORMAL")
        # Three datagrams to port 7777; nothing listens, which is fine.
        run("lab", "exec", "--name", name, "h1", "--", sys.executable, "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for _ in range(3): s.sendto(b'x', ('10.0.0.2', 7777))")  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            lines = run("lab", "tracelog", name, "--prog", "trace_ports").splitlines()
            if len(lines) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(lines) == 3, lines
        assert all(line.endswith(" s1 trace_ports: udp to port 7777") for line in lines), lines
        assert run("lab", "tracelog", name, "--prog", "other") == ""
    finally:
        the_lab.down()


def test_lab_with_two_controllers(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    """controller: {replicas: 2}: the lab starts an etcd and two
    controllers; one is master; killed, the other takes over; `lab down`
    stops all of them."""
    (tmp_path / "policy.yaml").write_text(POLICY)
    topo_file = tmp_path / "lab.yaml"
    topo_file.write_text(
        "switches: {s1: {dpid: 0x1}}\n"
        "hosts:\n"
        "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
        "  h2: {switch: s1, port: 2, ip: 10.0.0.2/24}\n"
        "controller: {policy: policy.yaml, api_port: 0, openflow_port: 16673, replicas: 2}\n"
    )
    topo = testbed.load_topology(topo_file)
    name = f"r{os.getpid() % 100000}"
    the_lab = testbed.Lab(layout, name, log=lambda m: None)
    the_lab.up(testbed.Topology(name, topo.switches, topo.hosts, topo.links, topo.controller))
    helpers = dict(the_lab.state.helpers)
    try:
        daemons = the_lab.status()["daemons"]
        assert daemons["etcd"]["running"]
        assert daemons["controller-1"]["running"]
        logs = [testbed.state_dir(layout, name) / f for f in ("controller.log",
                                                              "controller-1.log")]  # fmt: skip
        pids = [the_lab.state.pids["controller"], helpers["controller-1"]]
        deadline = time.monotonic() + 30
        while not any("master now" in log.read_text() for log in logs):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first = 0 if "master now" in logs[0].read_text() else 1
        assert the_lab.host("h1").ping("10.0.0.2", count=2, deadline=8).received == 2
        os.kill(pids[first], signal.SIGKILL)
        other = logs[1 - first]
        deadline = time.monotonic() + 10
        while "master now" not in other.read_text():
            assert time.monotonic() < deadline, other.read_text()[-2000:]
            time.sleep(0.1)
        assert the_lab.host("h1").ping("10.0.0.2", count=2, deadline=8).received == 2
    finally:
        the_lab.down()
    assert not any(pid_alive(pid) for pid in helpers.values())


def test_vhost_hosts(layout: Layout, ovs_tools: OvsTools, tmp_path: Path) -> None:
    """`port_type: vhost` through the CLI: the switch runs DPDK in huge pages
    the lab reserves, each vhost host's eth0 is the tap of its dpdk-testpmd
    (the vhost-user server of the switch's port), traffic and flows work
    across port types, and `okopy lab down` gives everything back even
    after the switch and a NIC died hard."""
    name = f"v{os.getpid() % 100000}"
    (tmp_path / "lab.yaml").write_text(
        f"name: {name}\n"
        "switches: {s1: {dpid: 0x1}}\n"
        "hosts:\n"
        "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
        "  h2: {switch: s1, port: 2, ip: 10.0.0.2/24, port_type: vhost, mac: '02:00:00:00:00:02'}\n"
        "  h3: {switch: s1, port: 3, ip: 10.0.0.3/24, port_type: vhost}\n"
    )
    okopy = [sys.executable, "-m", "okopy"]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*okopy, *argv], capture_output=True, text=True, check=False,
                              timeout=120)  # fmt: skip

    pages_before = NR_HUGEPAGES.read_text()
    up = run("lab", "up", str(tmp_path / "lab.yaml"))
    the_lab = testbed.Lab(layout, name, log=lambda m: None)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        the_lab.load()
        helpers = dict(the_lab.state.helpers)
        prefixes = list(the_lab.state.hugepages["prefixes"])
        assert set(helpers) == {"nic-h2", "nic-h3"}
        # The switch's DPDK and one dpdk-testpmd per vhost host, in 2 MB pages.
        wanted = (testbed.LAB_DPDK_MB + 2 * PEER_MB) // 2
        assert int(NR_HUGEPAGES.read_text()) == int(pages_before) + wanted
        status = the_lab.status()
        assert all(d["running"] for d in status["daemons"].values()), status
        assert status["hosts"]["h2"]["port_type"] == "vhost"
        rxqs = the_lab.switch().appctl("ovs-vswitchd", "dpif-netdev/pmd-rxq-show")
        assert {"s1-p2", "s1-p3"} <= set(re.findall(r"port: (\S+)", rxqs)), rxqs
        iface = the_lab.switch().vsctl("get", "interface", "s1-p2", "type")
        assert iface.strip() == "dpdkvhostuserclient"
        h2 = the_lab.host("h2")
        assert h2.ns.run(["cat", "/sys/class/net/eth0/address"]).strip() == "02:00:00:00:00:02"

        h1 = the_lab.host("h1")
        assert h1.ping("10.0.0.2", count=3, deadline=8).received == 3
        assert h2.ping("10.0.0.3", count=3, deadline=8).received == 3
        # A flow on the vhost port's traffic takes effect like on any other.
        drop = run("lab", "ofctl", name, "add-flow", "s1",
                   "priority=100,ip,nw_dst=10.0.0.3,actions=drop")  # fmt: skip
        assert drop.returncode == 0, drop.stderr
        assert h2.ping("10.0.0.3", count=3, interval=0.1, deadline=3).received == 0
        assert h1.ping("10.0.0.2", count=2, deadline=8).received == 2

        # The switch and one NIC die hard; down still gives everything back.
        os.kill(the_lab.state.pids["ovs-vswitchd"], signal.SIGKILL)
        os.kill(helpers["nic-h3"], signal.SIGKILL)
        namespaces = list(the_lab.state.namespaces)
    finally:
        down = run("lab", "down", "--name", name)
    assert down.returncode == 0, down.stdout + down.stderr
    assert NR_HUGEPAGES.read_text() == pages_before
    assert not any((RUNTIME_DIR / p).exists() for p in prefixes)
    assert not any(pid_alive(p) for p in helpers.values())
    assert not set(namespaces) & netns.existing()
    assert not testbed.state_dir(layout, name).exists()
