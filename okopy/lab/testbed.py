"""`okopy lab`: a testbed of switches and hosts from a topology file.

One private Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath)
runs in a namespace of its own and holds every switch as a netdev bridge;
each host is a namespace with `eth0` on a bridge port; switch-to-switch
links are veth pairs inside the switch namespace.  Everything the lab
creates is written to a state file as it is created, so `okopy lab down`
removes it all even after a crash.

A host's port is a veth the switch reads through AF_PACKET (the default)
or an AF_XDP socket (`port_type: afxdp`), or a DPDK vhost-user port
(`port_type: vhost`): then the switch runs DPDK in huge pages the lab
reserves (and `okopy lab down` gives back), and the host's `eth0` is a tap
device of a dpdk-testpmd in its namespace, the vhost-user server of the
switch's port (okopy/lab/dpdk.py).

    name: demo
    switches:
      s1: {dpid: 0x1}
    hosts:
      h1: {switch: s1, port: 1, ip: 10.0.0.1/24}
      h2: {switch: s1, port: 2, ip: 10.0.0.2/24, port_type: afxdp}
      h3: {switch: s1, port: 3, ip: 10.0.0.3/24, port_type: vhost}
    links:
      - {a: s1, a_port: 10, b: s2, b_port: 10}
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from okopy.controller.endpoint import API_ENV, TOKEN_ENV
from okopy.lab import shell
from okopy.lab.controller import ControllerProcess
from okopy.lab.dpdk import PEER_MB, HugePages, HugePagesUnavailable, TestpmdError, start_host_nic
from okopy.lab.etcd import EtcdError, EtcdProcess
from okopy.lab.hosts import Host, add_addresses, plug, port_name
from okopy.netns import Namespace, add_veth, disable_tx_offload
from okopy.ovs.instance import DpdkSettings, OvsInstance, OvsTools
from okopy.paths import Layout
from okopy.policy.schema import ConfigError, Validator
from okopy.process import pid_alive, terminate

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
MAX_NAME = 12
# Port names are "<switch>-p<port>" and must fit IFNAMSIZ (15 characters).
MAX_SWITCH_NAME = 8


class TopologyError(ConfigError):
    """The topology file is invalid."""


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says what to do."""


@dataclass(frozen=True)
class LabSwitch:
    name: str
    dpid: int


@dataclass(frozen=True)
class LabHost:
    name: str
    switch: str
    port: int
    ip: str
    mac: str | None = None
    # How the switch reaches the host: its veth through AF_PACKET (on the
    # main thread) or an AF_XDP socket ("afxdp", polled by a PMD thread),
    # or a vhost-user port whose peer, a dpdk-testpmd in the host's
    # namespace, is the host's NIC ("vhost", a PMD thread too).
    port_type: str = "afpacket"
    # A second address, IPv6, beside 'ip' (a dual-stack host).
    ip6: str | None = None


HOST_PORT_TYPES = ("afpacket", "afxdp", "vhost")
# With vhost hosts: the switch's DPDK memory (MB of huge pages; each
# host's dpdk-testpmd takes PEER_MB more) and the core of its PMD thread
# (the hosts' testpmd forwarding lcores poll core 0).
LAB_DPDK_MB = 256
LAB_PMD_CORE = 1


@dataclass(frozen=True)
class LabLink:
    a: str
    a_port: int
    b: str
    b_port: int


@dataclass(frozen=True)
class LabController:
    policy: str
    api_port: int = 8080  # on the host's 127.0.0.1; 0: any free port
    openflow_port: int = 6653
    # Controllers of the policy: with more than one, the lab starts an
    # etcd where they elect their master; each has its own OpenFlow port
    # (openflow_port + i) and API (api_port + i, or any free port).
    replicas: int = 1


@dataclass(frozen=True)
class Topology:
    name: str
    switches: tuple[LabSwitch, ...]
    hosts: tuple[LabHost, ...]
    links: tuple[LabLink, ...] = ()
    controller: LabController | None = None

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")


def _name(v: Validator, node: Node, what: str, limit: int = MAX_NAME) -> str | None:
    name = v.scalar(node, what)
    if not isinstance(name, str) or not name or set(name) - NAME_CHARS or len(name) > limit:
        v.error(node, f"{what} {name!r}: use up to {limit} of a-z, 0-9 and -")
        return None
    return name


def parse_topology(
    text: str, file: str = "<topology>", default_name: str = "lab", base: Path | None = None
) -> Topology:
    v = Validator(file)
    root = v.compose(text, "the topology", TopologyError)
    top = v.mapping(root, "the topology", ("switches", "hosts"), ("name", "links", "controller"))
    if top is None:
        raise TopologyError(v.problems)
    name = _name(v, top["name"], "lab name") if "name" in top else default_name
    switches: dict[str, LabSwitch] = {}
    # Every switch the file names, valid or not: a host or link on a switch
    # with a bad name or dpid is not also reported as on an unknown switch.
    declared: set[str] = set()
    snode = top.get("switches")
    if snode is not None and not isinstance(snode, MappingNode):
        v.error(snode, "switches must be a mapping of name -> switch")
    elif snode is not None:
        for k, sv in snode.value:
            declared.add(str(k.value))
            sname = _name(v, k, "switch name", MAX_SWITCH_NAME)
            f = v.mapping(sv, f"switch {k.value}", ("dpid",), ())
            if sname is None or f is None or "dpid" not in f:
                continue
            dpid = v.integer(f["dpid"], f"switch {sname} dpid", 1, (1 << 64) - 1)
            if dpid is not None:
                switches[sname] = LabSwitch(sname, dpid)
    ports: dict[tuple[str, int], str] = {}

    def claim(node: Node, switch: str, port: int, who: str) -> None:
        if switch not in declared:
            v.error(node, f"{who}: unknown switch {switch!r}")
        elif (switch, port) in ports:
            v.error(
                node,
                f"{who}: port {port} of {switch} is taken by {ports[switch, port]}",
            )
        else:
            ports[switch, port] = who

    hosts: list[LabHost] = []
    hnode = top.get("hosts")
    if hnode is not None and not isinstance(hnode, MappingNode):
        v.error(hnode, "hosts must be a mapping of name -> host")
    elif hnode is not None:
        addrs: dict[str, str] = {}
        for k, hv in hnode.value:
            # Each field is checked on its own, so that one bad field does
            # not hide the problems of the others.
            hname = _name(v, k, "host name")
            f = v.mapping(
                hv, f"host {k.value}", ("switch", "port", "ip"), ("mac", "port_type", "ip6")
            )
            if f is None:
                continue
            who = f"host {hname or k.value}"
            sw = v.scalar(f["switch"], "switch") if "switch" in f else None
            port = v.integer(f["port"], "port", 1, 0xFF00) if "port" in f else None
            iface = iface6 = None
            for key in ("ip", "ip6"):
                if key not in f:
                    continue
                ip = v.scalar(f[key], key)
                try:
                    if "/" not in str(ip):
                        raise ValueError
                    got = ipaddress.ip_interface(str(ip))
                    if key == "ip6" and got.version != 6:
                        raise ValueError
                except ValueError:
                    kind = "an IPv6 address" if key == "ip6" else "an address"
                    v.error(f[key], f"{who} {key} {ip!r}: give {kind} with prefix length")
                    continue
                if str(got.ip) in addrs:
                    v.error(f[key], f"{who}: {got.ip} is also {addrs[str(got.ip)]}")
                addrs[str(got.ip)] = hname or str(k.value)
                if key == "ip":
                    iface = got
                else:
                    iface6 = got
            mac = v.scalar(f["mac"], "mac") if "mac" in f else None
            port_type = v.scalar(f["port_type"], "port_type") if "port_type" in f else "afpacket"
            if port_type not in HOST_PORT_TYPES:
                v.error(f["port_type"], f"{who} port_type {port_type!r}: one of "
                        f"{', '.join(HOST_PORT_TYPES)}")  # fmt: skip
                port_type = None
            if isinstance(sw, str) and port is not None:
                claim(k, sw, port, who)
            elif isinstance(sw, str) and sw not in declared:
                v.error(k, f"{who}: unknown switch {sw!r}")
            if (
                hname is not None
                and isinstance(sw, str)
                and port is not None
                and iface
                and port_type is not None
            ):
                ip6 = str(iface6) if iface6 else None
                hosts.append(LabHost(hname, sw, port, str(iface), mac, port_type, ip6))
    links: list[LabLink] = []
    lnode = top.get("links")
    if lnode is not None and not isinstance(lnode, SequenceNode):
        v.error(lnode, "links must be a list")
    elif lnode is not None:
        for ln in lnode.value:
            f = v.mapping(ln, "a link", ("a", "a_port", "b", "b_port"), ())
            if f is None:
                continue
            a = v.scalar(f["a"], "a") if "a" in f else None
            b = v.scalar(f["b"], "b") if "b" in f else None
            ap = v.integer(f["a_port"], "a_port", 1, 0xFF00) if "a_port" in f else None
            bp = v.integer(f["b_port"], "b_port", 1, 0xFF00) if "b_port" in f else None
            who = f"link {a}-{b}"
            for sw, port in ((a, ap), (b, bp)):
                if isinstance(sw, str) and port is not None:
                    claim(ln, sw, port, who)
                elif isinstance(sw, str) and sw not in declared:
                    v.error(ln, f"{who}: unknown switch {sw!r}")
            if isinstance(a, str) and isinstance(b, str) and ap is not None and bp is not None:
                links.append(LabLink(a, ap, b, bp))
    controller = None
    if "controller" in top:
        f = v.mapping(
            top["controller"], "controller", ("policy",), ("api_port", "openflow_port", "replicas")
        )
        if f is not None and "policy" in f:
            pol = v.scalar(f["policy"], "policy")
            api_port = v.integer(f["api_port"], "api_port", 0, 65535) if "api_port" in f else 8080
            of_port = (
                v.integer(f["openflow_port"], "openflow_port", 1, 65535)
                if "openflow_port" in f
                else 6653
            )
            replicas = v.integer(f["replicas"], "replicas", 1, 5) if "replicas" in f else 1
            if isinstance(pol, str) and api_port is not None and of_port and replicas:
                path = Path(pol)
                if not path.is_absolute() and base is not None:
                    path = base / path
                controller = LabController(str(path), api_port, of_port, replicas)
    if not switches and not v.problems:
        v.error(root, "the topology needs at least one switch")
    if v.problems:
        raise TopologyError(v.problems)
    return Topology(
        name or default_name, tuple(switches.values()), tuple(hosts), tuple(links), controller
    )


def load_topology(path: Path) -> Topology:
    try:
        text = path.read_text()
    except OSError as e:
        raise LabError(f"{path}: {e.strerror}") from None
    return parse_topology(text, str(path), path.stem.lower()[:MAX_NAME], path.parent)


@dataclass
class LabState:
    """Everything a lab created, saved as it goes (see Lab.save)."""

    name: str
    rundir: str
    switch_ns: str = ""
    namespaces: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    topology: dict[str, Any] = field(default_factory=dict)
    # Where the controller's API is, from the host (HOST:PORT), and the
    # absolute path of its token file; empty without a controller.
    api: str = ""
    api_token_file: str = ""
    # The other daemons of the lab, by pid: controllers after the first
    # ("controller-1", ...), the etcd they elect their master in, and the
    # dpdk-testpmd NICs of vhost hosts ("nic-HOST").
    helpers: dict[str, int] = field(default_factory=dict)
    # The huge pages reserved for DPDK (HugePages.state()); empty without
    # vhost hosts.
    hugepages: dict[str, Any] = field(default_factory=dict)


def state_dir(layout: Layout, name: str) -> Path:
    return layout.build / "lab" / name


class Lab:
    """A running (or half-built, or crashed) lab, by its state directory."""

    def __init__(self, layout: Layout, name: str, log: Callable[[str], None] = print) -> None:
        self.layout = layout
        self.dir = state_dir(layout, name)
        self.log = log
        self.state = LabState(name, str(self.dir / "ovs"))

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def exists(self) -> bool:
        return self.state_file.exists()

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state), indent=1))
        tmp.replace(self.state_file)

    def load(self) -> None:
        if not self.exists():
            raise LabError(f"no lab {self.state.name!r} is up (no {self.state_file})")
        self.state = LabState(**json.loads(self.state_file.read_text()))

    def _ns(self, role: str) -> Namespace:
        ns = Namespace.create(role, f"okopy-lab-{self.state.name}-{role}")
        self.state.namespaces.append(ns.name)
        self.save()
        return ns

    def switch(self) -> OvsInstance:
        """The lab's Open vSwitch (to run ovs-vsctl / ovs-ofctl against)."""
        inst = OvsInstance(
            OvsTools.from_layout(self.layout),
            Path(self.state.rundir),
            Namespace.adopt(self.state.switch_ns),
        )
        inst.pids = dict(self.state.pids)
        return inst

    def up(self, topo: Topology) -> None:
        if self.exists():
            raise LabError(
                f"lab {self.state.name!r} is already up (or was not torn down): "
                f"run `okopy lab down --name {self.state.name}` first"
            )
        tools = OvsTools.from_layout(self.layout)
        self.state.topology = asdict(topo)
        self.save()
        pages: HugePages | None = None
        try:
            swns = self._ns("sw")
            self.state.switch_ns = swns.name
            dpdk = None
            vhosts = [h for h in topo.hosts if h.port_type == "vhost"]
            if vhosts:
                pages = self._reserve(LAB_DPDK_MB + PEER_MB * len(vhosts))
                eal = tuple(pages.eal_args(f"okopy-lab-{self.state.name}-ovs"))
                dpdk = DpdkSettings(eal, LAB_DPDK_MB, (LAB_PMD_CORE,))
                self._save_pages(pages)
            inst = OvsInstance(tools, Path(self.state.rundir), swns, dpdk)
            inst.start()
            self.state.pids = dict(inst.pids)
            self.save()
            for sw in topo.switches:
                inst.add_bridge(sw.name)
                inst.vsctl("set", "bridge", sw.name, f"other-config:datapath-id={sw.dpid:016x}")
            for h in topo.hosts:
                if h.port_type == "vhost":
                    assert pages is not None
                    self._plug_vhost(self._ns(h.name), inst, h, pages)
                else:
                    plug(self._ns(h.name), inst, h.switch, h.ip, h.port, h.mac, h.port_type,
                         h.ip6)  # fmt: skip
            for link in topo.links:
                pa, pb = f"{link.a}-p{link.a_port}", f"{link.b}-p{link.b_port}"
                add_veth(swns, pa, swns, pb)
                disable_tx_offload(swns, pa)
                disable_tx_offload(swns, pb)
                inst.add_port(link.a, pa, link.a_port)
                inst.add_port(link.b, pb, link.b_port)
            if topo.controller is not None:
                self._start_controller(topo, inst, swns)
        except BaseException:
            self.log("lab setup failed: tearing down what was made")
            self.down()
            raise
        pid = self.state.pids.get("ovs-vswitchd")
        self.log(
            f"lab {self.state.name} up: {len(topo.switches)} switches, "
            f"{len(topo.hosts)} hosts, ovs-vswitchd pid {pid}"
        )

    def _reserve(self, megabytes: int) -> HugePages:
        """Huge pages for DPDK, in a hugetlbfs in the lab's directory."""
        try:
            return HugePages(megabytes, self.dir / "hugepages").reserve()
        except HugePagesUnavailable as e:
            raise LabError(f"vhost hosts need DPDK's huge pages: {e}") from None

    def _save_pages(self, pages: HugePages) -> None:
        self.state.hugepages = pages.state()
        self.save()

    def _plug_vhost(self, ns: Namespace, inst: OvsInstance, h: LabHost, pages: HugePages) -> None:
        """Host 'h' on a vhost-user port: the switch's client port first
        (it retries until its server listens), then the host's dpdk-testpmd
        NIC, the server, whose tap device is the host's eth0."""
        port = port_name(h.switch, h.port)
        sock = self.dir / f"{h.name}.sock"
        try:
            inst.add_port(h.switch, port, h.port, "vhost", str(sock))
            pid = start_host_nic(ns, sock, pages, self.dir / f"{h.name}-nic.log",
                                 prefix=f"okopy-lab-{self.state.name}-{h.name}",
                                 mac=h.mac)  # fmt: skip
        except (ValueError, TestpmdError) as e:
            raise LabError(f"host {h.name}: {e}") from None
        finally:
            self._save_pages(pages)  # with the NIC's runtime files
        self.state.helpers[f"nic-{h.name}"] = pid
        self.save()
        disable_tx_offload(ns, "eth0")
        add_addresses(ns, "eth0", h.ip, h.ip6)
        ns.run(["ip", "link", "set", "eth0", "up"])

    @property
    def token_file(self) -> Path:
        return self.dir / "api-token"

    def _start_controller(self, topo: Topology, inst: OvsInstance, swns: Namespace) -> None:
        """Start the controller in the switch namespace, its API on the
        host's 127.0.0.1; return once it has reconciled every switch of the
        policy that is in the lab."""
        assert topo.controller is not None
        c = topo.controller
        self.token_file.write_text(secrets.token_hex(16) + "\n")
        self.token_file.chmod(0o600)
        # Bound here, in the host's namespace, and inherited by the
        # controller, which runs in the switches' namespace (where the
        # switches reach it on 127.0.0.1): host tools reach the API.
        api_socket = self._api_socket(c.api_port)
        extra: list[str] = []
        if c.replicas > 1:
            try:
                etcd = EtcdProcess(self.dir / "etcd", swns).start()
            except EtcdError as e:
                raise LabError(str(e)) from None
            assert etcd.proc is not None
            self.state.helpers["etcd"] = etcd.proc.pid
            self.save()
        ctls = []
        for i in range(c.replicas):
            if i:  # the first's socket is bound above
                api_socket = self._api_socket(c.api_port + i if c.api_port else 0)
            if c.replicas > 1:
                extra = ["--coordination", etcd.url, "--member", f"controller-{i}"]
            with api_socket:
                ctl = ControllerProcess(
                    Path(c.policy), self.dir / f"controller{f'-{i}' if i else ''}.log", swns,
                    c.openflow_port + i, token_file=self.token_file, api_socket=api_socket,
                    extra=extra,
                )  # fmt: skip
                ctl.start()
                port = api_socket.getsockname()[1]
            assert ctl.proc is not None
            if i:
                self.state.helpers[f"controller-{i}"] = ctl.proc.pid
            else:
                self.state.pids["controller"] = ctl.proc.pid
                self.state.api = f"127.0.0.1:{port}"
                self.state.api_token_file = str(self.token_file.resolve())
            self.save()
            ctls.append(ctl)
        for ctl in ctls:
            ctl.wait_for(r"policy: switch|API on", timeout=120)
        for sw in topo.switches:
            inst.vsctl("set", "bridge", sw.name, "fail_mode=secure", "protocols=OpenFlow13")
            inst.vsctl("set-controller", sw.name, *(ctl.target for ctl in ctls))
            if len(ctls) == 1:
                inst.vsctl("set", "controller", sw.name, "max_backoff=1000")
        # The master's log says when each switch is reconciled.
        wanted = {f"{sw.dpid:#x}" for sw in topo.switches}
        done = re.compile(r"switch (0x[0-9a-f]+) (reconciled|.*not in the policy)")
        deadline = time.monotonic() + 60
        while wanted:
            for ctl in ctls:
                for m in done.finditer(ctl.log()):
                    if m[1] in wanted:
                        wanted.discard(m[1])
                        self.log(f"switch {m[1]} {m[2]}")
            if wanted and time.monotonic() > deadline:
                raise LabError(f"switches {', '.join(sorted(wanted))} not reconciled in 60 s")
            time.sleep(0.05)

    def _api_socket(self, port: int) -> socket.socket:
        try:
            return socket.create_server(("127.0.0.1", port), backlog=1024)
        except OSError as e:
            raise LabError(
                f"the lab's API cannot listen on 127.0.0.1:{port} ({e.strerror}): "
                "another lab or program has it? Set controller.api_port in the topology "
                "to a free port, or to 0 for any"
            ) from None

    def require_running(self) -> None:
        """Load the state of a lab whose switch runs; else a LabError that
        names the labs that do."""
        if set(self.state.name) - NAME_CHARS or not self.exists():
            up = running_labs(self.layout)
            raise LabError(
                f"lab {self.state.name!r} is not running; "
                + (f"running: {', '.join(up)}" if up else "no lab is (okopy lab up FILE)")
            )
        self.load()
        pid = self.state.pids.get("ovs-vswitchd")
        if pid is None or not pid_alive(pid):
            raise LabError(
                f"lab {self.state.name!r} is not running: its ovs-vswitchd is gone; "
                f"clean up with `okopy lab down --name {self.state.name}`"
            )

    def vswitchd_log(self) -> Path:
        """The lab's ovs-vswitchd log (also after its switch died)."""
        self.load()
        return Path(self.state.rundir) / "ovs-vswitchd.log"

    def shell_env(self) -> dict[str, str]:
        """The variables that point Open vSwitch's tools, first on PATH, at
        the lab's switch, and okopy's API commands at its controller if it
        has one (`okopy lab env`)."""
        self.require_running()
        inst = self.switch()
        bindirs = [os.path.abspath(inst.tools.vsctl.parent),
                   os.path.abspath(inst.tools.ovsdb_tool.parent)]  # fmt: skip
        env = shell.shell_env(inst.variables, bindirs, os.environ.get("PATH", ""))
        if self.state.api:  # okopy's API commands reach its controller too
            env.update(self.api_env())
        return env

    def ofctl_argv(self, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of `ovs-ofctl ARGS` against the
        lab's switch, with -O OpenFlow13 unless ARGS choose."""
        env = self.shell_env()
        return shell.ofctl_argv(str(self.switch().tools.ofctl), args), env

    def api_env(self) -> dict[str, str]:
        """The environment that points okopy's API commands at this lab's
        controller (OKOPY_API, OKOPY_API_TOKEN_FILE), as state.json has it."""
        self.load()
        if not self.state.api:
            raise LabError(f"lab {self.state.name} has no controller")
        return {API_ENV: self.state.api, TOKEN_ENV: self.state.api_token_file}

    def ctl_argv(self, argv: Sequence[str]) -> list[str]:
        """`okopy ARGV` with this lab's API and token (see api_env())."""
        env = [f"{k}={v}" for k, v in self.api_env().items()]
        return ["env", *env, sys.executable, "-m", "okopy", *argv]

    def down(self) -> None:
        """Remove everything the state file lists; safe to repeat."""
        if self.exists():
            self.load()
        ctl_pid = self.state.pids.pop("controller", None)
        for pid in [ctl_pid, *(p for n, p in self.state.helpers.items() if n != "etcd")]:
            if pid is not None:
                terminate(pid)
        if self.state.pids:
            try:
                self.switch().stop()
            except Exception as e:  # Keep tearing down whatever happens.
                self.log(f"stopping Open vSwitch: {e}")
        if "etcd" in self.state.helpers:
            terminate(self.state.helpers["etcd"])
        if self.state.hugepages:  # every DPDK process has ended
            try:
                HugePages.adopt(self.state.hugepages).release()
            except Exception as e:  # Keep tearing down whatever happens.
                self.log(f"giving back huge pages: {e}")
        for name in reversed(self.state.namespaces):
            Namespace.adopt(name).delete()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.log(f"lab {self.state.name} down")

    def host(self, name: str) -> Host:
        self.load()
        topo = _topology_from_state(self.state.topology)
        h = topo.host(name)
        ns = Namespace.adopt(f"okopy-lab-{self.state.name}-{h.name}")
        return Host(h.name, ns, h.ip, port_name(h.switch, h.port), h.port)

    def exec(self, host: str, argv: Sequence[str]) -> list[str]:
        """The command line that runs 'argv' on 'host'."""
        return self.host(host).ns.argv(argv)

    def status(self) -> dict[str, Any]:
        self.load()
        inst = self.switch()
        topo = _topology_from_state(self.state.topology)
        out: dict[str, Any] = {
            "name": self.state.name,
            "daemons": {n: {"pid": p, "running": inst.running(n)} for n, p in inst.pids.items()},
            "switches": {},
            "hosts": {
                h.name: {
                    "ip": h.ip,
                    **({"ip6": h.ip6} if h.ip6 else {}),
                    "switch": h.switch,
                    "port": h.port,
                    "port_type": h.port_type,
                }
                for h in topo.hosts
            },
        }
        if self.state.api:
            out["api"] = {"address": self.state.api, "token_file": self.state.api_token_file}
        for name, pid in self.state.helpers.items():
            out["daemons"][name] = {"pid": pid, "running": pid_alive(pid)}
        for sw in topo.switches:
            flows = 0
            if inst.running():
                # OpenFlow 1.3: what a bridge with a controller allows.
                dump = inst.ofctl("-O", "OpenFlow13", "dump-flows", sw.name)
                flows = sum(1 for ln in dump.splitlines() if "actions=" in ln)
            out["switches"][sw.name] = {"dpid": f"{sw.dpid:#x}", "flows": flows}
        return out


def running_labs(layout: Layout) -> list[str]:
    """Names of the labs whose switch runs."""
    out = []
    for state in sorted((layout.build / "lab").glob("*/state.json")):
        try:
            pid = json.loads(state.read_text()).get("pids", {}).get("ovs-vswitchd")
        except (OSError, ValueError):
            continue  # Being written or removed right now.
        if isinstance(pid, int) and pid_alive(pid):
            out.append(state.parent.name)
    return out


def _topology_from_state(d: dict[str, Any]) -> Topology:
    c = d.get("controller")
    return Topology(
        d["name"],
        tuple(LabSwitch(**s) for s in d["switches"]),
        tuple(LabHost(**h) for h in d["hosts"]),
        tuple(LabLink(**ln) for ln in d.get("links", ())),
        LabController(**c) if c else None,
    )
