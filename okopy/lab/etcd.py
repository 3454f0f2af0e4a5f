"""An etcd server of our own, for the labs and tests that run several
controllers (Debian's etcd-server; scripts/setup installs it).  Started in
a network namespace or on the host's 127.0.0.1, with its data in a
directory of ours, and stopped by its pid."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from okopy.netns import Namespace


class EtcdError(RuntimeError):
    """etcd is missing, or did not start."""


class EtcdProcess:
    def __init__(self, workdir: Path, netns: Namespace | None = None,
                 client_port: int = 2379, peer_port: int = 2380) -> None:  # fmt: skip
        self.workdir = workdir
        self.netns = netns
        self.client_port = client_port
        self.peer_port = peer_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The tooz URL of this server (from inside its namespace)."""
        return f"etcd3+http://127.0.0.1:{self.client_port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "etcd.log"

    def start(self, timeout: float = 30.0) -> EtcdProcess:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise EtcdError("no etcd: install Debian's etcd-server (scripts/setup does)")
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [etcd, "--name", "okopy", "--data-dir", str(self.workdir / "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"okopy={peer}"]  # fmt: skip
        if self.netns is not None:
            argv = self.netns.argv(argv)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "ready to serve client requests" not in self.log_file.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EtcdError(f"etcd did not start:\n{self.log_file.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGTERM to our child, by pid (Popen's), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
