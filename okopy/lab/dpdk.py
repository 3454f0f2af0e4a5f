"""DPDK beside the switch: huge pages reserved for one run, and a DPDK peer
for Open vSwitch's vhost-user client ports.

Huge pages are a machine-wide pool (/proc/sys/vm/nr_hugepages).  A run adds
the pages it needs to the pool, mounts a hugetlbfs of that size for its own
DPDK processes (each with a --file-prefix of its own), and on close removes
what those processes left there (a killed DPDK process leaves its page
files, and the pages stay taken), unmounts, and gives the pages back.

The peer is `dpdk-testpmd` (Debian's dpdk-dev) in interactive mode with one
`net_virtio_user` port per socket, as the vhost-user server: the switch's
`dpdkvhostuserclient` ports connect to it, with no virtual machine.  Its
commands go through its standard input; what it prints goes to a file,
read back up to its next prompt.

A lab host on a vhost-user port has dpdk-testpmd as its NIC instead
(start_host_nic()): the server port forwarded to and from a tap device in
the host's namespace, which the host's kernel uses as its `eth0`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from okopy.netns import Namespace
from okopy.process import run, terminate

PAGE_KB = 2048
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
# Where DPDK (as root) keeps a process's runtime files, per --file-prefix.
RUNTIME_DIR = Path("/var/run/dpdk")
TESTPMD = "dpdk-testpmd"
PROMPT = "testpmd> "
# What dpdk-testpmd without a prompt prints once its ports are started.
FORWARDING = "start packet forwarding"
# Huge page memory (MB) of a dpdk-testpmd peer with --total-num-mbufs=4096.
PEER_MB = 64
# Where vhost-user socket paths end: sun_path holds 107 bytes and a NUL.
MAX_SOCKET_PATH = 107


class Pool(Protocol):
    """The kernel's count of reserved huge pages (NR_HUGEPAGES)."""

    def read_text(self) -> str: ...
    def write_text(self, data: str) -> int: ...


class HugePagesUnavailable(RuntimeError):
    """The kernel could not reserve the huge pages a run asked for."""


class HugePages:
    """'megabytes' of 2 MB huge pages, added to the pool for one run, in a
    hugetlbfs mounted at 'mount' and sized to them."""

    def __init__(self, megabytes: int, mount: Path, pool: Pool = NR_HUGEPAGES) -> None:
        if megabytes <= 0 or megabytes % (PAGE_KB // 1024):
            raise ValueError(f"huge pages: {megabytes} MB is not a positive multiple of 2 MB")
        self.pages = megabytes * 1024 // PAGE_KB
        self.mount = mount
        self.pool = pool
        self.added = 0
        self.mounted = False
        self.prefixes: list[str] = []

    @property
    def megabytes(self) -> int:
        return self.pages * PAGE_KB // 1024

    def reserve(self) -> HugePages:
        before = int(self.pool.read_text())
        want = before + self.pages
        self.pool.write_text(f"{want}\n")
        got = int(self.pool.read_text())
        self.added = max(0, got - before)
        if got < want:
            self.release()
            raise HugePagesUnavailable(
                f"asked the kernel for {self.pages} huge pages of 2 MB ({self.megabytes} MB) "
                f"beyond the {before} reserved, and it gave {got - before}: memory is "
                f"too small or too fragmented (see HugePages_* in /proc/meminfo)"
            )
        try:
            self.mount.mkdir(parents=True, exist_ok=True)
            run(["mount", "-t", "hugetlbfs", "-o", f"pagesize=2M,size={self.megabytes}M",
                 "nodev", str(self.mount)], timeout=30)  # fmt: skip
            self.mounted = True
        except BaseException:
            self.release()
            raise
        return self

    def eal_args(self, prefix: str, megabytes: int | None = None) -> list[str]:
        """DPDK EAL arguments for a process that takes its memory
        ('megabytes' if given; Open vSwitch says it with dpdk-socket-mem
        instead) from these pages and nothing outside them, scans no PCI
        device, and keeps its runtime files under 'prefix', which release()
        removes."""
        self.prefixes.append(prefix)
        # One file per memory segment list: vhost-user shares a peer's
        # memory as at most 8 regions, which 2 MB pages in files of their
        # own exceed.
        args = [
            "--no-pci",
            "--single-file-segments",
            f"--huge-dir={self.mount}",
            f"--file-prefix={prefix}",
        ]
        return args + (["-m", str(megabytes)] if megabytes is not None else [])

    def release(self) -> None:
        """Remove what DPDK left in the mount and in its runtime directory
        (/var/run/dpdk/PREFIX), unmount, give the pages back; safe to call
        twice.  The DPDK processes have ended."""
        for prefix in self.prefixes:
            shutil.rmtree(RUNTIME_DIR / prefix, ignore_errors=True)
        self.prefixes.clear()
        if self.mounted:
            for leftover in self.mount.iterdir():
                leftover.unlink(missing_ok=True)
            run(["umount", str(self.mount)], timeout=30)
            self.mounted = False
        if self.added:
            now = int(self.pool.read_text())
            self.pool.write_text(f"{max(0, now - self.added)}\n")
            self.added = 0

    def state(self) -> dict[str, Any]:
        """What release() needs, as JSON, for a process other than the one
        that reserved the pages (`okopy lab down`: see adopt())."""
        return {"megabytes": self.megabytes, "mount": str(self.mount), "added": self.added,
                "mounted": self.mounted, "prefixes": list(self.prefixes)}  # fmt: skip

    @classmethod
    def adopt(cls, state: dict[str, Any], pool: Pool = NR_HUGEPAGES) -> HugePages:
        """The pages another process reserved, from its state()."""
        pages = cls(int(state["megabytes"]), Path(state["mount"]), pool)
        pages.added = int(state["added"])
        pages.mounted = bool(state["mounted"])
        pages.prefixes = [str(p) for p in state["prefixes"]]
        return pages

    def __enter__(self) -> HugePages:
        return self.reserve()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass(frozen=True)
class PortStats:
    rx_packets: int
    rx_missed: int
    tx_packets: int
    tx_errors: int


_STATS = re.compile(
    r"NIC statistics for port (\d+).*?RX-packets:\s*(\d+)\s+RX-missed:\s*(\d+).*?"
    r"TX-packets:\s*(\d+)\s+TX-errors:\s*(\d+)",
    re.S,
)


def parse_port_stats(text: str) -> dict[int, PortStats]:
    """Read `show port stats all` of dpdk-testpmd."""
    return {
        int(m[1]): PortStats(int(m[2]), int(m[3]), int(m[4]), int(m[5]))
        for m in _STATS.finditer(text)
    }


def testpmd_argv(
    vdevs: list[str],
    hugepages: HugePages,
    prefix: str,
    megabytes: int,
    main_lcore: int,
    lcore: int,
    *options: str,
) -> list[str]:
    """dpdk-testpmd on the ports 'vdevs' (--vdev arguments), its memory
    from 'hugepages', one forwarding lcore on core 'lcore', then its own
    'options'."""
    return [
        TESTPMD,
        "-l", f"{main_lcore},{lcore}", "--main-lcore", str(main_lcore),
        *hugepages.eal_args(prefix, megabytes),
        *(arg for vdev in vdevs for arg in ("--vdev", vdev)),
        "--",
        "--nb-cores=1",
        "--total-num-mbufs=4096",
        *options,
    ]  # fmt: skip


class TestpmdError(RuntimeError):
    """dpdk-testpmd did not start or did not answer; carries its output."""


class Testpmd:
    """dpdk-testpmd as the vhost-user server of 'sockets' (one port each,
    in order), forwarding lcore 'lcore' and main lcore 'main_lcore'."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        sockets: list[Path],
        hugepages: HugePages,
        log: Path,
        *,
        prefix: str,
        megabytes: int = PEER_MB,
        main_lcore: int = 0,
        lcore: int = 1,
        forward_mode: str = "rxonly",
    ) -> None:
        self.sockets = sockets
        self.log = log
        vdevs = [f"net_virtio_user{i},path={sock},server=1,queues=1"
                 for i, sock in enumerate(sockets)]  # fmt: skip
        self.argv = [
            # Its statistics go through stdio, its prompt straight to the
            # file: unbuffered, or the prompt comes before what it follows.
            "stdbuf", "-o0",
            *testpmd_argv(vdevs, hugepages, prefix, megabytes, main_lcore, lcore,
                          "-i", f"--forward-mode={forward_mode}"),
        ]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        self._read = 0

    def start(self, timeout: float = 30) -> Testpmd:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        try:
            self._until_prompt(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _output(self) -> str:
        return self.log.read_text(errors="replace")

    def _until_prompt(self, timeout: float) -> str:
        """What testpmd printed since the last call, once it shows its prompt."""
        deadline = time.monotonic() + timeout
        while True:
            text = self._output()
            new = text[self._read :]
            if PROMPT in new:
                self._read = len(text)
                return new
            if self.proc is not None and self.proc.poll() is not None:
                raise TestpmdError(
                    f"`{' '.join(self.argv)}` exited with status {self.proc.returncode}:\n"
                    + "\n".join(text.splitlines()[-20:])
                )
            if time.monotonic() > deadline:
                raise TestpmdError(f"dpdk-testpmd gave no prompt in {timeout} s:\n{new[-2000:]}")
            time.sleep(0.05)

    def command(self, line: str, timeout: float = 30) -> str:
        """Run one interactive command; what it printed."""
        if self.proc is None or self.proc.stdin is None:
            raise TestpmdError("dpdk-testpmd is not running")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._until_prompt(timeout)

    def port_stats(self) -> dict[int, PortStats]:
        return parse_port_stats(self.command("show port stats all"))

    def wait_links(self, timeout: float = 30) -> None:
        """Until every port's link is up: the switch has connected and
        taken the device."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.command("show port info all")
            ups = len(re.findall(r"Link status: up", info))
            if ups >= len(self.sockets):
                return
            if time.monotonic() > deadline:
                raise TestpmdError(f"vhost-user links not up after {timeout} s:\n{info}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Quit (or end it, by its pid); safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:
            terminate(proc.pid, 5)
        proc.wait(5)
        if proc.stdin is not None:
            proc.stdin.close()

    def __enter__(self) -> Testpmd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_host_nic(
    ns: Namespace,
    socket: Path,
    hugepages: HugePages,
    log: Path,
    *,
    prefix: str,
    iface: str = "eth0",
    mac: str | None = None,
    lcore: int = 0,
    main_lcore: int = 1,
    timeout: float = 30.0,
) -> int:
    """Start dpdk-testpmd in 'ns' as the NIC of the host there: the
    vhost-user server port at 'socket' (which a switch's
    dpdkvhostuserclient port connects to) forwarded to and from a tap
    device 'iface' in 'ns' (with address 'mac' if given); return its pid
    once it forwards.

    It runs without a prompt (it forwards until SIGTERM, and prints port
    statistics hourly to 'log'), outliving whoever started it like the
    lab's other daemons; its forwarding lcore polls core 'lcore'."""
    if len(str(socket)) > MAX_SOCKET_PATH:
        raise ValueError(f"vhost-user socket path {socket} is longer than {MAX_SOCKET_PATH} "
                         "bytes: use a shorter directory")  # fmt: skip
    vdevs = [f"net_virtio_user0,path={socket},server=1,queues=1",
             f"net_tap0,iface={iface}" + (f",mac={mac}" if mac else "")]  # fmt: skip
    # Without a prompt, testpmd waits for a key unless it prints
    # statistics periodically; then it runs until a signal.
    argv = testpmd_argv(vdevs, hugepages, prefix, PEER_MB, main_lcore, lcore,
                        "--forward-mode=io", "--stats-period=3600")  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(ns.argv(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise TestpmdError(f"dpdk-testpmd for {iface} in {ns.name} exited with status "
                               f"{proc.returncode}:\n{tail}")  # fmt: skip
        # The tap's address and flags are testpmd's to set until then.
        if FORWARDING in log.read_text(errors="replace"):
            return proc.pid
        if time.monotonic() > deadline:
            terminate(proc.pid, 5)
            raise TestpmdError(f"dpdk-testpmd for {iface} in {ns.name} did not start "
                               f"forwarding in {timeout} s (see {log})")  # fmt: skip
        time.sleep(0.1)
