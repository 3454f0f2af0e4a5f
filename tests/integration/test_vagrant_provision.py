"""The Vagrant lab's provisioning, with network namespaces for its VMs.

vagrant/provision.sh runs unchanged except for its environment: namespaces
ctl, sw1 and sw2 stand in for the three VMs, each with an `eth1` on the
"private network" (a Linux bridge in a namespace of its own) with the
Vagrantfile's addresses.  The switch role runs inside sw1 and sw2 (`ip
netns exec`) with a run directory and host namespace of its own; the
controller role runs in ctl in the foreground instead of under systemd.
Everything is named uniquely and removed afterwards, pass or fail; every
daemon is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from okopy.lab.controller import ControllerProcess
from okopy.lab.hosts import PingResult, parse_ping
from okopy.netns import Namespace, add_veth, disable_tx_offload, existing
from okopy.ovs.instance import OvsTools
from okopy.policy import file as policy
from okopy.process import pid_alive, run, terminate

ROOT = Path(__file__).resolve().parent.parent.parent
VAGRANT = ROOT / "vagrant"
PROVISION = VAGRANT / "provision.sh"
POLICY = VAGRANT / "policy.yaml"
DAEMONS = ("ovs-vswitchd", "ovsdb-server")
OF13 = ("-O", "OpenFlow13")


@dataclass(frozen=True)
class VagrantSwitch:
    name: str
    ip: str
    peer: str
    dpid: int
    host: str


@dataclass(frozen=True)
class Vagrantfile:
    controller_ip: str
    switches: tuple[VagrantSwitch, ...]
    switch_args: str


def read_vagrantfile() -> Vagrantfile:
    """The addresses and provisioning arguments the Vagrantfile gives."""
    text = (VAGRANT / "Vagrantfile").read_text()
    m = re.search(r'^NET = "([\d.]+)"', text, re.M)
    assert m, "no NET in the Vagrantfile"
    net = m.group(1)
    text = text.replace("#{NET}", net)
    switches = tuple(
        VagrantSwitch(name, ip, peer, int(dpid), host)
        for name, ip, peer, dpid, host in re.findall(
            r'"(\w+)" => \{ ip: "([\d.]+)", peer: "([\d.]+)", dpid: (\d+), host: "([\d./]+)" \}',
            text,
        )
    )
    ctl = re.search(r'c\.vm\.network "private_network", ip: "([\d.]+)"', text)
    args = re.search(r'args: (\["switch".*\])', text)
    assert ctl, "no controller address in the Vagrantfile"
    assert args, "no switch provisioning arguments in the Vagrantfile"
    assert len(switches) == 2, "the Vagrantfile's switches changed"
    return Vagrantfile(ctl.group(1), switches, args.group(1))


@dataclass
class Node:
    """One emulated VM: its namespace and run directory."""

    name: str
    ns: Namespace
    run: Path
    host_ns: Namespace | None = None


@dataclass
class VagrantLab:
    vagrantfile: Vagrantfile
    tmp: Path
    ctl: Node
    switches: dict[str, Node] = field(default_factory=dict)
    controller: ControllerProcess | None = None
    tools: OvsTools | None = None

    def env(self, node: Node, **extra: str) -> dict[str, str]:
        env = dict(os.environ, OKOPY_DIR=str(ROOT), OKOPY_RUN=str(node.run), OKOPY_SKIP_SETUP="1")
        if node.host_ns is not None:
            env["OKOPY_HOST_NS"] = node.host_ns.name
        return env | extra

    def provision_switch(self, sw: VagrantSwitch, nsenter: bool = False, **env: str) -> str:
        """Run `provision.sh switch ...` inside the switch's namespace with
        the Vagrantfile's arguments (and 'env'); return its output.  With
        'nsenter', only the network namespace changes, not the mount
        namespace (as `ip netns exec` does): like a VM's root shell."""
        node = self.switches[sw.name]
        script = ["bash", str(PROVISION), "switch", sw.ip, sw.peer, str(sw.dpid), sw.host,
                  self.vagrantfile.controller_ip]  # fmt: skip
        if nsenter:
            argv = ["nsenter", f"--net=/run/netns/{node.ns.name}", *script]
        else:
            argv = node.ns.argv(script)
        log = self.tmp / f"provision-{sw.name}.log"
        # A file, not a pipe: the daemons it detaches must not hold our end.
        with log.open("w") as out:
            proc = subprocess.Popen(argv, env=self.env(node, **env), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            try:
                rc = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                # Its own process group (the detached daemons left it).
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        text = log.read_text()
        assert rc == 0, f"provision.sh switch on {sw.name} exited {rc}:\n{text[-3000:]}"
        return text

    def start_controller(self) -> ControllerProcess:
        """`provision.sh controller` in ctl, in the foreground: it execs the
        controller, so the process we start is the controller."""
        ctl = ControllerProcess(POLICY, self.tmp / "controller.log")
        with ctl.log_file.open("wb") as out:
            ctl.proc = subprocess.Popen(
                self.ctl.ns.argv(["bash", str(PROVISION), "controller"]),
                env=self.env(self.ctl, OKOPY_FOREGROUND="1"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.controller = ctl
        return ctl

    def ofctl(self, switch: str, *args: str) -> str:
        """The patched ovs-ofctl against br0 of a switch, via its run dir."""
        assert self.tools is not None
        env = dict(os.environ, OVS_RUNDIR=str(self.switches[switch].run))
        return run([str(self.tools.ofctl), *OF13, args[0], "br0", *args[1:]], env=env)

    def daemon_pids(self, switch: str) -> dict[str, int]:
        node = self.switches[switch]
        return {d: int((node.run / f"{d}.pid").read_text()) for d in DAEMONS}

    def teardown(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        for node in self.switches.values():
            stop_daemons(node.run)
        for node in [*self.switches.values(), self.ctl]:
            if node.host_ns is not None:
                # Made by the fixture, or by provision.sh (if it got so far).
                Namespace.adopt(node.host_ns.name).delete()
            node.ns.delete()


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def same_netns(pid: int, ns: Namespace) -> bool:
    """Whether process 'pid' runs in network namespace 'ns'."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns.name}").st_ino


def stop_daemons(rundir: Path) -> None:
    """Stop the daemons provision.sh started in 'rundir', by their pidfiles
    (only if the pid still names a daemon of this run directory)."""
    for daemon in DAEMONS:
        try:
            pid = int((rundir / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if any(str(rundir) in arg for arg in cmdline(pid)):
            terminate(pid)


def mac(ns: Namespace, ifname: str) -> str:
    return ns.run(["ip", "-br", "link", "show", "dev", ifname]).split()[2]


def snmp(ns: Namespace, group: str, counter: str) -> int:
    """A counter of /proc/net/snmp in 'ns' (e.g. Udp NoPorts)."""
    names, values = [
        ln.split()[1:] for ln in ns.run(["cat", "/proc/net/snmp"]).splitlines()
        if ln.startswith(f"{group}:")
    ]  # fmt: skip
    return int(dict(zip(names, values, strict=True))[counter])


TCP_SERVER = """
import socket, sys
s = socket.create_server((sys.argv[1], 5001))
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
n = 0
while b := c.recv(65536):
    n += len(b)
c.sendall(str(n).encode())
"""
TCP_CLIENT = """
import socket, sys, time
for _ in range(100):
    try:
        c = socket.create_connection((sys.argv[1], 5001), timeout=10)
        break
    except ConnectionRefusedError:
        time.sleep(0.1)
c.sendall(b"x" * int(sys.argv[2]))
c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode())
"""


def tcp_transfer(client: Namespace, server: Namespace, server_ip: str, size: int) -> str:
    """Send 'size' bytes over TCP; return what the server says it got."""
    proc = subprocess.Popen(server.argv(["python3", "-c", TCP_SERVER, server_ip]))
    try:
        return client.run(["python3", "-c", TCP_CLIENT, server_ip, str(size)], timeout=40).strip()
    finally:
        terminate(proc.pid)
        proc.wait()


def ping(
    ns: Namespace, dest: str, *args: str, count: int = 3, deadline: int | None = 20
) -> PingResult:
    """Ping from 'ns'; with a 'deadline' (s), until 'count' replies or then."""
    argv = ["ping", "-n", "-c", str(count), "-W", "1", *args, dest]
    if deadline is not None:
        argv[1:1] = ["-w", str(deadline)]
    return parse_ping(ns.run(argv, check=False, timeout=(deadline or 30) + 10))


@contextmanager
def emulated_lab(ovs_tools: OvsTools, tmp_path: Path) -> Iterator[VagrantLab]:
    """The private network and the three 'VMs', not yet provisioned; all
    removed on exit, also on an exception."""
    vf = read_vagrantfile()
    made: list[Namespace] = []

    def ns(role: str) -> Namespace:
        made.append(Namespace.create(role))
        return made[-1]

    lab: VagrantLab | None = None
    try:
        lan = ns("lan")
        lan.run(["ip", "link", "add", "lan", "type", "bridge"])
        lan.run(["ip", "link", "set", "lan", "up"])
        nodes = {}
        for name, ip in [("ctl", vf.controller_ip), *((s.name, s.ip) for s in vf.switches)]:
            node = Node(name, ns(name), tmp_path / name)
            # The VM's private NIC, addressed as Vagrant configures it.
            add_veth(node.ns, "eth1", lan, name)
            lan.run(["ip", "link", "set", name, "master", "lan"])
            node.ns.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth1"])
            nodes[name] = node
        # A VM's NIC puts complete checksums on the wire; a veth leaves
        # them to the receiver, which the switches' AF_PACKET ports are not.
        disable_tx_offload(nodes["ctl"].ns, "eth1")
        for s in vf.switches:
            # `ip netns add` under `ip netns exec` would not be seen outside
            # (provision.sh says so): the host namespaces are made here.
            nodes[s.name].host_ns = ns(f"h{s.name[-1]}")
        lab = VagrantLab(vf, tmp_path, nodes.pop("ctl"), nodes, tools=ovs_tools)
        yield lab
    finally:
        if lab is not None:
            lab.teardown()
        for n in reversed(made):
            n.delete()


@pytest.fixture
def vagrant_lab(ovs_tools: OvsTools, tmp_path: Path) -> Iterator[VagrantLab]:
    with emulated_lab(ovs_tools, tmp_path) as lab:
        yield lab


def test_vagrantfile_passes_what_provision_expects() -> None:
    vf = read_vagrantfile()
    want = '["switch", s[:ip], s[:peer], s[:dpid].to_s, s[:host], "#{NET}.10"]'
    assert vf.switch_args == want.replace("#{NET}", "192.168.56")
    assert [(s.name, s.ip, s.peer, s.dpid) for s in vf.switches] == [
        ("sw1", "192.168.56.11", "192.168.56.12", 1),
        ("sw2", "192.168.56.12", "192.168.56.11", 2),
    ]
    pol = policy.load(POLICY)
    assert {s.name: s.dpid for s in vf.switches} == {n: s.dpid for n, s in pol.switches.items()}


def test_provisioned_lab(vagrant_lab: VagrantLab) -> None:
    lab = vagrant_lab
    vf = lab.vagrantfile
    pol = policy.load(POLICY)
    sw1, sw2 = vf.switches
    root_links_before = set(run(["ip", "-o", "link", "show"]).split())

    # `vagrant up` order: the controller, then the switches.
    ctl = lab.start_controller()
    for sw in vf.switches:
        assert f"switch dpid {sw.dpid} up" in lab.provision_switch(sw)
    for sw in vf.switches:
        ctl.wait_for(rf"switch {sw.dpid:#x} reconciled", timeout=120, new_only=False)

    # What each daemon was started with, and where.
    assert ctl.proc is not None
    args = cmdline(ctl.proc.pid)
    token = str(lab.ctl.run / "api-token")
    assert args[1:] == [str(ROOT / ".venv/bin/okopy"), "controller", "--policy", str(POLICY),
                        "--listen", "0.0.0.0:6653", "--api", "0.0.0.0:8080",
                        "--api-token-file", token], args  # fmt: skip
    assert same_netns(ctl.proc.pid, lab.ctl.ns)
    tools = lab.tools
    assert tools is not None
    for name, node in lab.switches.items():
        pids = lab.daemon_pids(name)
        vswitchd, ovsdb = cmdline(pids["ovs-vswitchd"]), cmdline(pids["ovsdb-server"])
        assert vswitchd[:2] == [str(tools.vswitchd), f"unix:{node.run}/db.sock"], vswitchd
        assert f"--pidfile={node.run}/ovs-vswitchd.pid" in vswitchd
        assert ovsdb[:3] == [str(tools.ovsdb_server), f"{node.run}/conf.db",
                             f"--remote=punix:{node.run}/db.sock"], ovsdb  # fmt: skip
        for pid in pids.values():
            assert same_netns(pid, node.ns)
    # Nothing of the switches landed in the machine's own namespace.
    root_links_after = set(run(["ip", "-o", "link", "show"]).split())
    for link in ("br-phy:", "br0:", "veth-host@", "ovs-netdev:"):
        assert not any(w.startswith(link) for w in root_links_after - root_links_before), link

    # The hosts, as provision.sh made them.
    h1, h2 = (lab.switches[s.name].host_ns for s in vf.switches)
    assert h1 is not None
    assert h2 is not None
    eth0 = h1.run(["ip", "-o", "addr", "show", "dev", "eth0"])
    assert f"inet {sw1.host} " in eth0, eth0
    assert "mtu 1450" in h1.run(["ip", "link", "show", "dev", "eth0"])

    # Both switches have the policy's flows; only sw1 the rate limiter.
    for sw in vf.switches:
        flows = [ln for ln in lab.ofctl(sw.name, "dump-flows").splitlines() if "actions=" in ln]
        assert len(flows) == len(pol.switches[sw.name].flows), flows
    progs = lab.ofctl(sw1.name, "dump-bpf-progs")
    assert 'name="limit"' in progs, progs
    assert "name=" not in lab.ofctl(sw2.name, "dump-bpf-progs")

    # host1 <-> host2 across the userspace VXLAN tunnel (the first packets
    # may wait for the tunnel's ARP), also at the host's full MTU.
    ip1, ip2 = sw1.host.split("/")[0], sw2.host.split("/")[0]
    assert ping(h1, ip2).received == 3
    assert ping(h2, ip1).received == 3
    assert ping(h1, ip2, "-M", "do", "-s", str(1450 - 28)).received == 3
    # TCP in full-size segments: checksums complete, frames within the MTU.
    assert tcp_transfer(h1, h2, ip2, 300_000) == "300000"

    # br-phy answers with the NIC's MAC (all a VM's virtual network may
    # deliver), and each switch's kernel left the tunnel's packets to OVS
    # (it has no VXLAN socket: it would have counted them as NoPorts).
    for node in lab.switches.values():
        assert mac(node.ns, "br-phy") == mac(node.ns, "eth1")
        assert snmp(node.ns, "Udp", "NoPorts") == 0

    # The controller's API, as the README asks it on the controller VM.
    out = lab.ctl.ns.run([str(ROOT / ".venv/bin/okopy"), "switches", "--json"])
    connected = sorted((s["dpid"], s["connected"]) for s in json.loads(out))
    assert connected == [(sw.dpid, True) for sw in vf.switches], out

    # What the policy blocks: sw1 limits each source coming from the tunnel
    # to 'rate' packets/s with bursts of 'burst'; host2's flood is cut down.
    (seed,) = [s for s in pol.switches[sw1.name].seeds if s.map == "config"]
    rate, burst = seed.value["rate"], seed.value["burst"]
    start = time.monotonic()
    # 50 at once (more than the burst), then one every millisecond.
    flood = ping(h2, ip1, "-l", "50", "-i", "0.001", count=500, deadline=None)
    elapsed = time.monotonic() - start
    assert burst // 2 <= flood.received < flood.sent, flood
    assert flood.received <= burst + rate * elapsed + 10, (flood, elapsed)
    sources = lab.ofctl(sw1.name, "dump-bpf-map", "1", "sources")
    state = re.search(r"key=10\.1\.0\.2 value=\{tat=\d+,passed=(\d+),dropped=(\d+)\}", sources)
    assert state, sources  # host2's own bucket
    passed, dropped = int(state.group(1)), int(state.group(2))
    assert passed >= flood.received, sources
    assert dropped > 0, sources
    assert "drop=0 " not in lab.ofctl(sw1.name, "dump-bpf-progs")
    # A polite pace passes.
    time.sleep(0.5)
    assert ping(h2, ip1, "-i", "0.2", count=5).received == 5

    # Provisioning again (`vagrant provision`) changes nothing that runs.
    pids = lab.daemon_pids(sw1.name)
    lab.provision_switch(sw1)
    assert lab.daemon_pids(sw1.name) == pids
    assert all(pid_alive(p) for p in pids.values())
    assert lab.ofctl(sw1.name, "dump-ports-desc").count("veth-host") == 1
    assert ping(h1, ip2).received == 3


def test_failed_provisioning_is_cleaned_up(ovs_tools: OvsTools, tmp_path: Path) -> None:
    """provision.sh refuses to make a host namespace under `ip netns exec`
    (nobody else could enter it); what it started before is still removed
    when the test fails."""
    pids: dict[str, int] = {}
    names: set[str] = set()

    def failing_test() -> None:
        with emulated_lab(ovs_tools, tmp_path) as lab:
            sw1 = lab.vagrantfile.switches[0]
            missing = f"okopy-{os.getpid()}-missing-host"
            with pytest.raises(AssertionError, match=f"namespace {missing} does not exist"):
                lab.provision_switch(sw1, OKOPY_HOST_NS=missing)
            assert missing not in existing()
            pids.update(lab.daemon_pids(sw1.name))
            names.update(n.ns.name for n in [lab.ctl, *lab.switches.values()])
            names.update(n.host_ns.name for n in lab.switches.values() if n.host_ns)
            assert all(pid_alive(p) for p in pids.values())
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()
    assert len(pids) == 2
    assert not any(pid_alive(p) for p in pids.values())
    assert not names & existing()


def test_switch_role_makes_its_host_namespace(ovs_tools: OvsTools, tmp_path: Path) -> None:
    """In the machine's mount namespace, as in a VM, provision.sh creates
    the host namespace itself (here with a unique name)."""
    with emulated_lab(ovs_tools, tmp_path) as lab:
        sw1 = lab.vagrantfile.switches[0]
        node = lab.switches[sw1.name]
        assert node.host_ns is not None
        node.host_ns.delete()
        name = f"{node.host_ns.name}-new"
        node.host_ns = Namespace(name)  # for the teardown, once it exists
        assert name not in existing()
        lab.provision_switch(sw1, nsenter=True)
        assert name in existing()
        host = Namespace.adopt(name)
        assert f"inet {sw1.host} " in host.run(["ip", "-o", "addr", "show", "dev", "eth0"])
        ports = lab.ofctl(sw1.name, "dump-ports-desc")
        assert re.search(r"^ 1\(veth-host\):", ports, re.M), ports
        assert re.search(r"^ 10\(vxlan0\):", ports, re.M), ports
        pids = lab.daemon_pids(sw1.name)
        for pid in pids.values():
            assert same_netns(pid, node.ns)
    assert name not in existing()
    assert not any(pid_alive(p) for p in pids.values())
