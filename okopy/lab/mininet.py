"""Mininet with okopy's patched Open vSwitch: a switch and a controller class.

For `mn --custom` (Mininet's own command, Debian's `python3`):

    mn --custom okopy/lab/mininet.py --switch okopy --controller none --topo single,3
    mn --custom okopy/lab/mininet.py --switch okopy \\
       --controller okopy,policy=examples/policy.yaml --topo single,3

and for Mininet's Python API (any Python that finds okopy; Debian's
Mininet package is found even from okopy's virtualenv):

    from okopy.lab.mininet import OkopySwitch
    net = Mininet(topo=SingleSwitchTopo(3), switch=OkopySwitch, controller=None)

Every okopy switch of a process is a bridge (`datapath_type=netdev`) of one
private `ovsdb-server` + `ovs-vswitchd` from `build/ovs`, started with the
first switch and stopped with the last one (okopy.ovs.instance), in a run
directory of its own (`build/mininet/<pid>-*/ovs`, or `$OKOPY_MININET_DIR/ovs`).
The system's Open vSwitch, if any, is never used.  The userspace datapath
makes tap devices named after the bridges in the network namespace where
Mininet runs: run Mininet in a network namespace of its own (docs/lab.md).

Loading this module confines Mininet (confine_mininet): Mininet's cleanup
(`mn -c`, and what `mn` does after any exception) kills processes by name
machine-wide (`killall`, `pkill -9 -f`), deletes every Open vSwitch bridge,
every link with "-eth" in its name and /tmp/*.log, and its first network
raises machine-wide sysctls and limits (fixLimits).  Here cleanup stops only
what this module started, by pid, and limits are left alone.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

# Debian's `mininet` package (2.3.0) installs here, outside okopy's virtualenv.
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def _import_debian_mininet() -> None:
    """Make `import mininet` work in a Python that does not see Debian's
    dist-packages (okopy's virtualenv): load that one package from there.
    okopy.paths.import_debian_package() does the same for other packages,
    but okopy may not be importable yet here (under `mn`, see below)."""
    if importlib.util.find_spec("mininet") is not None:
        return
    init = DEBIAN_DIST_PACKAGES / "mininet" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "mininet", init, submodule_search_locations=[str(init.parent)]
    )
    if not init.exists() or spec is None or spec.loader is None:
        raise ImportError(
            "Mininet is not installed: run scripts/setup (Debian package mininet)",
            name="mininet",
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules["mininet"] = module
    spec.loader.exec_module(module)


_import_debian_mininet()

# Only the standard library and Mininet come before confine_mininet() runs:
# under `mn`, an exception raised while this file loads makes `mn` run
# Mininet's real cleanup.
import mininet.clean  # noqa: E402
import mininet.net  # noqa: E402
import mininet.util  # noqa: E402
from mininet.log import debug, info, warn  # noqa: E402
from mininet.node import Controller, Node, OVSSwitch, Switch  # noqa: E402


def confine_mininet() -> None:
    """Keep Mininet's machine-wide side effects from running; idempotent.

    - Mininet's cleanup (`mininet.clean.cleanup`, `Cleanup.cleanup`, and the
      `cleanup` that `mn` imported, which it runs for `mn -c` and after any
      exception) is replaced by stop_all(): it stops the controllers and
      the Open vSwitch this module started, by their pids, and nothing else.
      Mininet's would `killall`/`pkill -9 -f` processes by name everywhere,
      delete every Open vSwitch bridge of the system's Open vSwitch, every
      link with "-eth" in its name and /tmp/*.log.
    - `fixLimits` (run by the first Mininet() of a process) does nothing:
      Mininet's would raise machine-wide sysctls (fs.file-max,
      net.core.*mem_max, kernel.pty.max, ...) and rlimits.
    """
    mininet.clean.cleanup = _cleanup
    mininet.clean.killprocs = _refuse
    mininet.clean.sh = _refuse
    mininet.clean.Cleanup.cleanup = classmethod(_cleanup_method)
    mininet.net.fixLimits = _keep_limits
    mininet.util.fixLimits = _keep_limits
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, "MininetRunner") and hasattr(main, "cleanup"):
        # `mn` itself: it runs its own reference to cleanup.
        setattr(main, "cleanup", _cleanup)  # noqa: B010


def _cleanup() -> None:
    warn(
        "*** okopy: Mininet's cleanup is disabled: it kills processes by name and "
        "deletes every Open vSwitch bridge and '-eth' link of the machine.\n"
        "*** okopy: stopping only the controllers and Open vSwitch okopy started\n"
    )
    stop_all()


def _cleanup_method(cls: type) -> None:
    _cleanup()


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"okopy confines Mininet: refused to run its cleanup ({args!r})")


def _keep_limits() -> None:
    debug("*** okopy: leaving resource limits and sysctls as they are\n")


confine_mininet()


def _checkout() -> Path:
    # co_filename is the path `mn --custom` compiled this file from (it
    # exec()s it without __file__), or the module's file when imported.
    return Path(_checkout.__code__.co_filename).resolve().parents[2]


# `mn` runs Debian's python3, which does not know okopy: use this checkout.
if importlib.util.find_spec("okopy") is None:
    sys.path.insert(0, str(_checkout()))

from okopy.lab.controller import ControllerProcess  # noqa: E402
from okopy.ovs.instance import OvsInstance, OvsTools  # noqa: E402
from okopy.paths import default_layout  # noqa: E402
from okopy.process import CommandError, run  # noqa: E402

# The OpenFlow version of ovs-ofctl commands (okopy's messages need 1.3+).
OPENFLOW = "OpenFlow13"


@functools.cache
def run_dir() -> Path:
    """Where this process keeps its Open vSwitch and controller logs:
    $OKOPY_MININET_DIR, or a new build/mininet/<pid>-XXXXXXXX (pids repeat
    across PID namespaces); kept afterwards for the logs."""
    override = os.environ.get("OKOPY_MININET_DIR")
    if override:
        return Path(override).resolve()
    base = default_layout().build / "mininet"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))


class _SharedOvs:
    """The private Open vSwitch that holds every okopy switch of this
    process as a bridge; runs while at least one switch is started."""

    def __init__(self) -> None:
        self._instance: OvsInstance | None = None
        self.bridges: set[str] = set()

    @property
    def instance(self) -> OvsInstance:
        """The instance (not necessarily running): its tools, env and paths."""
        if self._instance is None:
            tools = OvsTools.from_layout(default_layout())
            self._instance = OvsInstance(tools, run_dir() / "ovs")
        return self._instance

    def acquire(self, bridge: str) -> OvsInstance:
        inst = self.instance
        if not inst.pids:
            inst.start()
            info(
                f"\n*** okopy: patched Open vSwitch in {inst.rundir} "
                f"(ovs-vswitchd pid {inst.pids['ovs-vswitchd']})\n"
            )
        self.bridges.add(bridge)
        return inst

    def release(self, bridge: str) -> None:
        self.bridges.discard(bridge)
        if not self.bridges:
            self.stop()

    def stop(self) -> None:
        self.bridges.clear()
        if self._instance is not None and self._instance.pids:
            self._instance.stop()


_OVS = _SharedOvs()
_CONTROLLERS: list[ControllerProcess] = []


def stop_all() -> None:
    """Stop the controllers and the Open vSwitch this module started (by
    their pids); safe to repeat.  Also runs when the interpreter exits."""
    while _CONTROLLERS:
        _CONTROLLERS.pop().stop()
    _OVS.stop()


atexit.register(stop_all)


class OkopySwitch(OVSSwitch):
    """A Mininet switch that is a netdev bridge of okopy's patched Open
    vSwitch; it runs `bpf(prog=N[,table=T])` actions and okopy's messages.

    failMode: None (default) is `secure` with controllers, `standalone`
    (a NORMAL flow: a learning switch) without.  protocols: OVS's default,
    or OpenFlow13 with controllers (okopy's controller speaks 1.3).
    Other parameters are OVSSwitch's; `datapath` can only be `user`.
    """

    def __init__(
        self,
        name: str,
        failMode: str | None = None,
        datapath: str = "user",
        protocols: str | None = None,
        **params: Any,
    ) -> None:
        if datapath != "user":
            raise ValueError(f"{name}: okopy switches use the userspace datapath (datapath=user)")
        # Mininet asks switches with batchStartup for batch mode; ours runs
        # its commands itself (see batchStartup).
        params["batch"] = False
        super().__init__(name, datapath="user", protocols=protocols, **params)
        self.failMode = failMode
        # The fail mode start() chose.
        self.mode: str | None = None

    @classmethod
    def setup(cls) -> None:
        """Check that okopy's Open vSwitch is built (instead of asking the
        system's ovsdb-server, as OVSSwitch.setup does)."""
        version = run([str(_OVS.instance.tools.vsctl), "--version"], timeout=30)
        found = re.search(r"\d+\.\d+", version)
        cls.OVSVersion = found.group(0) if found else "3.1"

    # The switch's shell ----------------------------------------------------

    def startShell(self, mnopts: Any = None) -> None:
        """Start the node's shell with the patched tools first on PATH and
        OVS_RUNDIR & co. pointing at the private instance, so that commands
        typed at it (`s1 ovs-ofctl ...` in the CLI) reach this switch."""
        super().startShell(mnopts)
        inst = _OVS.instance
        env = {k: v for k, v in inst.env.items() if k.startswith("OVS_")}
        self.cmd(
            "export "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
            + f" PATH={shlex.quote(str(inst.tools.vsctl.parent))}:$PATH"
        )

    # Tools --------------------------------------------------------------------

    @property
    def ovs(self) -> OvsInstance:
        """The private Open vSwitch this switch is a bridge of."""
        return _OVS.instance

    @property
    def ofp_version(self) -> str:
        """The OpenFlow version ovs-ofctl uses with this switch."""
        if self.protocols:
            return str(self.protocols).split(",")[-1].strip()
        return OPENFLOW

    def ofctl(self, command: str, *args: str) -> str:
        """Run the patched `ovs-ofctl COMMAND <this switch> ARGS...`; raises
        CommandError on failure.  E.g. s1.ofctl("dump-bpf-progs")."""
        return self.ovs.ofctl("-O", self.ofp_version, command, self.name, *args)

    def vsctl(self, *args: Any, **kwargs: Any) -> str:
        """Run the patched ovs-vsctl against the private database; Mininet
        passes shell-style fragments, which are split here."""
        argv = shlex.split(" ".join(str(a) for a in args))
        return self.ovs.vsctl(*argv)

    def dpctl(self, *args: Any) -> str:
        """Mininet's `dpctl` CLI command: ovs-ofctl on this switch; errors
        are returned as text, not raised (they would end `mn`)."""
        if not args:
            return "usage: dpctl COMMAND [ARG...]\n"
        try:
            return self.ofctl(str(args[0]), *(str(a) for a in args[1:]))
        except CommandError as e:
            return f"{e}\n"

    # Lifecycle -------------------------------------------------------------

    def data_intfs(self) -> list[Any]:
        """Interfaces that are ports of the bridge (not lo, none with an IP)."""
        return [i for i in self.intfList() if self.ports[i] and not i.IP()]

    def start(self, controllers: list[Any]) -> None:
        if self.inNamespace:
            raise ValueError(f"{self.name}: okopy switches run in Mininet's namespace")
        int(self.dpid, 16)
        inst = _OVS.acquire(self.name)
        mode = self.failMode or ("secure" if controllers else "standalone")
        self.mode = mode
        bridge = [
            f"other-config:datapath-id={self.dpid}",
            f"other-config:dp-desc={self.name}",
            f"fail_mode={mode}",
            "datapath_type=netdev",
        ]
        if not self.inband:
            bridge.append("other-config:disable-in-band=true")
        protocols = self.protocols or (OPENFLOW if controllers else None)
        if protocols:
            bridge.append(f"protocols={protocols}")
        argv = ["--if-exists", "del-br", self.name, "--", "add-br", self.name]
        argv += ["--", "set", "bridge", self.name, *bridge]
        for intf in self.data_intfs():
            argv += ["--", "add-port", self.name, intf.name]
            argv += ["--", "set", "interface", intf.name, f"ofport_request={self.ports[intf]}"]
        inst.vsctl(*argv)
        targets = [f"{c.protocol}:{c.IP()}:{c.port}" for c in controllers]
        if self.listenPort:
            # Passive connections (dpctl over TCP) from this machine only.
            targets.append(f"ptcp:{self.listenPort}:127.0.0.1")
        if targets:
            # Reconnect within a second (OVS backs off up to 8 s by default).
            backoff = self.reconnectms or 1000
            argv, ids = [], []
            for i, target in enumerate(targets):
                ids.append(f"@c{i}")
                argv += ["--", f"--id=@c{i}", "create", "controller", f'target="{target}"',
                         f"max_backoff={backoff}"]  # fmt: skip
            inst.vsctl(*argv, "--", "set", "bridge", self.name, f"controller=[{','.join(ids)}]")
        for intf in self.data_intfs():
            self._software_checksums(intf)

    @staticmethod
    def _software_checksums(intf: Any) -> None:
        """Compute TX checksums in software on both ends of a veth: the
        userspace datapath would pass unfilled ones on (okopy.netns)."""
        link = getattr(intf, "link", None)
        ends = [intf] if link is None else [link.intf1, link.intf2]
        for end in ends:
            end.node.cmd("ethtool -K", end.name, "tx off")

    def connected(self) -> bool:
        """Connected to a controller (a standalone switch needs none)."""
        if self.mode == "standalone":
            return True
        uuids = self.ovs.vsctl("get", "bridge", self.name, "controller").strip("[] \n")
        return any(
            self.ovs.vsctl("get", "controller", u.strip(), "is_connected").strip() == "true"
            for u in uuids.split(",")
            if u.strip()
        )

    def _remove_bridge(self) -> None:
        if self.name not in _OVS.bridges:
            return
        try:
            self.ovs.vsctl("--if-exists", "del-br", self.name)
        finally:
            _OVS.release(self.name)

    def stop(self, deleteIntfs: bool = True) -> None:
        self._remove_bridge()
        Switch.stop(self, deleteIntfs)

    @classmethod
    def batchStartup(cls, switches: list[Any], run: Any = None) -> list[Any]:
        """Nothing left to do: start() configured each switch."""
        return switches

    @classmethod
    def batchShutdown(cls, switches: list[Any], run: Any = None) -> list[Any]:
        """Remove the bridges (the last one stops the private Open vSwitch);
        Mininet terminates the switches' shells afterwards."""
        for switch in switches:
            switch._remove_bridge()
        return switches


def controller_python() -> str:
    """A Python that can run `okopy controller` (it needs os-ken): this one,
    or okopy's virtualenv when `mn` (Debian's python3) loaded this module."""
    if importlib.util.find_spec("os_ken") is not None:
        return sys.executable
    venv = Path(os.environ.get("OKOPY_VENV") or default_layout().repo / ".venv")
    python = venv / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"the okopy controller needs okopy's virtualenv ({venv}): run scripts/setup"
        )
    return str(python)


class OkopyController(Controller):
    """okopy's controller for a policy file, on 127.0.0.1:port; it loads the
    policy's programs, maps and flows into the switches of that policy.

    policy: the policy YAML (required); api: HOST:PORT to serve the HTTP API
    on (optional); token_file: the API's bearer token file (optional).
    The log is <run_dir()>/<name>.log.
    """

    def __init__(
        self,
        name: str,
        policy: str | None = None,
        api: str | None = None,
        token_file: str | None = None,
        port: int = 6653,
        **params: Any,
    ) -> None:
        if not policy:
            raise ValueError(f"{name}: give a policy: --controller okopy,policy=FILE")
        self.policy = Path(policy).resolve()
        if not self.policy.is_file():
            raise ValueError(f"{name}: no policy file {self.policy}")
        self.api = api
        self.token_file = Path(token_file).resolve() if token_file else None
        self.process: ControllerProcess | None = None
        params.setdefault("ip", "127.0.0.1")
        super().__init__(name, command="okopy", port=int(port), **params)

    @property
    def log_file(self) -> Path:
        return run_dir() / f"{self.name}.log"

    def start(self) -> None:
        """Start the controller; return once it has read the policy."""
        proc = ControllerProcess(
            self.policy, self.log_file, None, self.port,
            api=self.api, token_file=self.token_file, python=controller_python(),
        )  # fmt: skip
        self.process = proc
        _CONTROLLERS.append(proc)
        proc.start()
        assert proc.proc is not None
        info(f"\n*** okopy: controller pid {proc.proc.pid}, log {self.log_file}\n")
        proc.wait_for(r"policy: switch|API on", timeout=120)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait for a line of the controller's log, e.g. r"switch 0x1 reconciled"."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.wait_for(pattern, timeout=timeout, new_only=False)

    def stop(self, *args: Any, **kwargs: Any) -> None:
        if self.process is not None:
            self.process.stop()
            if self.process in _CONTROLLERS:
                _CONTROLLERS.remove(self.process)
        Node.stop(self, *args, **kwargs)


# For `mn --custom okopy/lab/mininet.py`: --switch okopy[,param=value...] and
# --controller okopy,policy=FILE[,api=HOST:PORT].
switches = {"okopy": OkopySwitch}
controllers = {"okopy": OkopyController}
