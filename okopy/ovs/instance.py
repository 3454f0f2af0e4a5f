"""A private Open vSwitch: `ovsdb-server` + `ovs-vswitchd` from `build/ovs`.

Runs without systemd and without the kernel module, in a directory of its
own, with `ovs-vswitchd` inside a network namespace of its own (the netdev
datapath creates tap devices named after its bridges, so two switches in
one namespace would collide).  Daemons are started with `--detach`, which
returns only once they are ready, and are stopped by the pids they wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from okopy.netns import Namespace
from okopy.ovs.build import missing_binaries
from okopy.paths import Layout
from okopy.process import CommandError, pid_alive, run, terminate, wait_gone


class OvsNotBuilt(RuntimeError):
    """The patched Open vSwitch has not been built yet."""


@dataclass(frozen=True)
class OvsTools:
    """The programs of one Open vSwitch build tree."""

    build: Path
    src: Path

    @classmethod
    def from_layout(cls, layout: Layout) -> OvsTools:
        missing = missing_binaries(layout.ovs_build)
        if missing:
            raise OvsNotBuilt(
                f"Open vSwitch is not built in {layout.ovs_build} "
                f"(missing {', '.join(missing)}): run `okopy ovs build`"
            )
        return cls(layout.ovs_build, layout.ovs_src)

    @property
    def vswitchd(self) -> Path:
        return self.build / "vswitchd" / "ovs-vswitchd"

    @property
    def ovsdb_server(self) -> Path:
        return self.build / "ovsdb" / "ovsdb-server"

    @property
    def ovsdb_tool(self) -> Path:
        return self.build / "ovsdb" / "ovsdb-tool"

    @property
    def vsctl(self) -> Path:
        return self.build / "utilities" / "ovs-vsctl"

    @property
    def ofctl(self) -> Path:
        return self.build / "utilities" / "ovs-ofctl"

    @property
    def appctl(self) -> Path:
        return self.build / "utilities" / "ovs-appctl"

    @property
    def schema(self) -> Path:
        return self.src / "vswitchd" / "vswitch.ovsschema"


@dataclass(frozen=True)
class DpdkSettings:
    """DPDK in ovs-vswitchd, initialised when it starts: 'eal' are the EAL
    arguments (other_config:dpdk-extra), 'megabytes' its huge page memory
    (dpdk-socket-mem and -limit), 'pmd_cores' the cores of its PMD threads
    (pmd-cpu-mask).

    Each port gets a mempool sized from its queues (per-port-memory).  With
    the default shared mempool, Open vSwitch creates it when the first
    vhost-user client connects, trying 262144 mbufs and halving until one
    fits: while a size that does not fit holds the heap, a second client
    connecting at that moment cannot allocate its device ("failed to
    allocate memory for new device") and its peer sees the connection
    reset."""

    eal: tuple[str, ...]
    megabytes: int
    pmd_cores: tuple[int, ...] = (1,)

    def other_config(self) -> list[str]:
        mask = sum(1 << c for c in self.pmd_cores)
        return [
            "other_config:dpdk-init=true",
            f'other_config:dpdk-extra="{" ".join(self.eal)}"',
            f"other_config:dpdk-socket-mem={self.megabytes}",
            f"other_config:dpdk-socket-limit={self.megabytes}",
            "other_config:per-port-memory=true",
            f"other_config:pmd-cpu-mask={mask:#x}",
        ]


# Port types of the lab and the tests: how each is set on an Interface.
# afpacket: a kernel device (veth) read through AF_PACKET by the netdev
# datapath; afxdp: the same device through an AF_XDP socket, its XDP program
# in the driver (veth has native XDP); vhost: a DPDK vhost-user client port
# whose 'device' is the socket of its peer (options:vhost-server-path).
PORT_TYPES = ("afpacket", "afxdp", "vhost")


def interface_settings(port_type: str, device: str) -> list[str]:
    """The Interface columns that make a port of 'port_type' on 'device'."""
    if port_type == "afpacket":
        return []
    if port_type == "afxdp":
        return ["type=afxdp", "options:xdp-mode=native"]
    if port_type == "vhost":
        return ["type=dpdkvhostuserclient", f'options:vhost-server-path="{device}"']
    raise ValueError(f"unknown port type {port_type!r} (one of {', '.join(PORT_TYPES)})")


class OvsInstance:
    """One private switch: its database, its vswitchd, its run directory."""

    def __init__(
        self,
        tools: OvsTools,
        rundir: Path,
        netns: Namespace | None = None,
        dpdk: DpdkSettings | None = None,
        dummy: bool = False,
    ) -> None:
        self.tools = tools
        self.rundir = rundir
        self.netns = netns
        self.dpdk = dpdk
        # With 'dummy', every port of ovs-vswitchd is a netdev-dummy port
        # (--enable-dummy=override, as in Open vSwitch's own tests): no
        # privileges, no kernel devices; packets come in through
        # `netdev-dummy/receive` and go out to options:tx_pcap files.
        self.dummy = dummy
        self.pids: dict[str, int] = {}

    # Environment and paths -------------------------------------------------

    @property
    def variables(self) -> dict[str, str]:
        """The OVS_* variables that point Open vSwitch's tools at this
        instance.  Absolute, because a relative OVS_RUNDIR breaks
        `ovs-ofctl CMD s1`: it makes the socket path OVS_RUNDIR/s1.mgmt,
        which the unix stream resolves against OVS_RUNDIR once more ("s1
        is not a bridge or a socket")."""
        d = os.path.abspath(self.rundir)
        return {
            "OVS_RUNDIR": d,
            "OVS_DBDIR": d,
            "OVS_LOGDIR": d,
            "OVS_SYSCONFDIR": d,
            "OVS_PKGDATADIR": os.path.abspath(self.tools.src),
            "OVS_BINDIR": os.path.abspath(self.tools.build / "utilities"),
        }

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.variables}

    @property
    def db_socket(self) -> Path:
        return self.rundir / "db.sock"

    def ctl(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.ctl"

    def log_file(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.log"

    # Lifecycle ---------------------------------------------------------------

    def _start_daemon(self, name: str, argv: list[str]) -> None:
        pidfile = self.rundir / f"{name}.pid"
        argv = [
            *argv,
            f"--pidfile={pidfile}",
            f"--unixctl={self.ctl(name)}",
            f"--log-file={self.log_file(name)}",
            "--detach",
            "--no-chdir",
            "-vconsole:off",
        ]
        if name == "ovs-vswitchd" and self.netns is not None:
            argv = self.netns.argv(argv)
        # --detach returns once the daemon is ready.  Its output goes to a
        # file, never a pipe the daemon could hold open.
        with (self.rundir / f"{name}.stdout").open("w") as out:
            proc = subprocess.run(
                argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
        if proc.returncode != 0:
            tail = self.log_tail(name)
            raise CommandError(argv, proc.returncode, tail)
        self.pids[name] = int(pidfile.read_text().strip())

    def log_tail(self, name: str = "ovs-vswitchd", lines: int = 20) -> str:
        """The last lines the daemon wrote, for an error message."""
        text = ""
        for f in (self.rundir / f"{name}.stdout", self.log_file(name)):
            if f.exists():
                text += f.read_text()
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> OvsInstance:
        """Create the database and start both daemons; ready on return."""
        self.rundir.mkdir(parents=True, exist_ok=True)
        try:
            db = self.rundir / "conf.db"
            if not db.exists():
                run(
                    [
                        str(self.tools.ovsdb_tool),
                        "create",
                        str(db),
                        str(self.tools.schema),
                    ],
                    env=self.env,
                )
            self._start_daemon(
                "ovsdb-server",
                [
                    str(self.tools.ovsdb_server),
                    str(db),
                    f"--remote=punix:{self.db_socket}",
                    "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                ],
            )
            self.vsctl("--no-wait", "init")
            if self.dpdk is not None:
                self.vsctl("--no-wait", "set", "Open_vSwitch", ".", *self.dpdk.other_config())
            self._start_daemon(
                "ovs-vswitchd",
                [
                    str(self.tools.vswitchd),
                    f"unix:{self.db_socket}",
                    *(["--enable-dummy=override"] if self.dummy else []),
                ],
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _stop_daemon(self, name: str) -> None:
        pid = self.pids.pop(name, None)
        if pid is None:
            return
        args = ["exit", "--cleanup"] if name == "ovs-vswitchd" else ["exit"]
        try:
            self.appctl(name, *args, timeout=15)
            if wait_gone(pid, 10):
                return
        except (CommandError, subprocess.TimeoutExpired):
            pass  # Not answering its control socket: signal it instead.
        terminate(pid, 5)

    def stop(self) -> None:
        """Stop both daemons (by their own pids); safe to call twice."""
        self._stop_daemon("ovs-vswitchd")
        self._stop_daemon("ovsdb-server")

    def running(self, name: str = "ovs-vswitchd") -> bool:
        pid = self.pids.get(name)
        return pid is not None and pid_alive(pid)

    def __enter__(self) -> OvsInstance:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Tools -------------------------------------------------------------------

    def vsctl(self, *args: str, timeout: float = 30) -> str:
        return run(
            [
                str(self.tools.vsctl),
                f"--db=unix:{self.db_socket}",
                f"--timeout={int(timeout)}",
                *args,
            ],
            env=self.env,
            timeout=timeout + 5,
        )

    def ofctl(self, *args: str, timeout: float = 30) -> str:
        return run([str(self.tools.ofctl), *args], env=self.env, timeout=timeout)

    def appctl(self, daemon: str, *args: str, timeout: float = 30) -> str:
        return run(
            [
                str(self.tools.appctl),
                "-t",
                str(self.ctl(daemon)),
                f"--timeout={int(timeout)}",
                *args,
            ],
            env=self.env,
            timeout=timeout + 5,
        )

    def add_bridge(self, name: str, datapath_type: str = "netdev") -> None:
        """Add a bridge; returns once ovs-vswitchd has configured it."""
        self.vsctl(
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            f"datapath_type={datapath_type}",
        )

    def add_port(
        self,
        bridge: str,
        port: str,
        ofport: int | None = None,
        port_type: str = "afpacket",
        device: str = "",
    ) -> None:
        """Add 'port' ('port_type' on 'device': see PORT_TYPES; a kernel
        device is named 'port'); returns once ovs-vswitchd has it.  A port
        ovs-vswitchd could not open is removed again and the reason raised."""
        settings = interface_settings(port_type, device)
        if ofport is not None:
            settings.append(f"ofport_request={ofport}")
        args = ["add-port", bridge, port]
        if settings:
            args += ["--", "set", "interface", port, *settings]
        self.vsctl(*args)
        if port_type != "afpacket":
            error = self.vsctl("get", "interface", port, "error").strip()
            if error not in ("[]", '""'):
                self.vsctl("del-port", bridge, port)
                raise CommandError(args, 1, f"port {port} ({port_type}): {error}")


def flow_packets(dump: str) -> dict[str, int]:
    """Map each flow's match (priority and fields) to its packet count."""
    counts = {}
    for line in dump.splitlines():
        m = re.search(r"n_packets=(\d+),.* (priority=\S+?) actions=", line)
        if m:
            counts[m.group(2)] = int(m.group(1))
    return counts
