"""Run `okopy controller` as a child process (tests, the lab, the demo).

The controller runs in the switch's network namespace, so the switch
reaches it on 127.0.0.1 there; its log goes to a file that callers wait on
for a line, with a deadline, rather than sleeping.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from okopy.controller.endpoint import API_ENV, TOKEN_ENV
from okopy.netns import Namespace


class ControllerError(RuntimeError):
    """The controller died or did not log what was awaited."""


class ControllerProcess:
    def __init__(
        self,
        policy: Path,
        log_file: Path,
        netns: Namespace | None = None,
        port: int = 6653,
        api: str | None = None,
        token_file: Path | None = None,
        python: str = sys.executable,
        api_socket: socket.socket | None = None,
        extra: Sequence[str] = (),
        listen_host: str = "127.0.0.1",
    ) -> None:
        """'api': HOST:PORT to serve the API on (in 'netns'), or 'api_socket':
        a listening socket to serve it on, which the controller inherits;
        'extra': more `okopy controller` arguments."""
        self.policy = policy
        self.python = python  # a Python that has okopy and os-ken
        self.log_file = log_file
        self.netns = netns
        self.port = port
        self.api = api
        self.token_file = token_file
        self.api_socket = api_socket
        self.extra = list(extra)
        self.listen_host = listen_host
        self.proc: subprocess.Popen[bytes] | None = None
        self._read = 0

    @property
    def target(self) -> str:
        """The OpenFlow controller target a bridge in the namespace uses."""
        return f"tcp:127.0.0.1:{self.port}"

    def start(self) -> ControllerProcess:
        argv = [self.python, "-m", "okopy", "controller", "--policy", str(self.policy),
                "--listen", f"{self.listen_host}:{self.port}", "--verbose"]  # fmt: skip
        if self.api:
            argv += ["--api", self.api]
        if self.token_file:
            argv += ["--api-token-file", str(self.token_file)]
        argv += self.extra
        fds: tuple[int, ...] = ()
        if self.api_socket is not None:
            fds = (self.api_socket.fileno(),)
            argv += ["--api-socket-fd", str(fds[0])]
        if self.netns is not None:
            argv = self.netns.argv(argv)
        # Only the arguments above say where the API is and which token it
        # takes, whatever the environment of whoever started us.
        env = {k: v for k, v in os.environ.items() if k not in (API_ENV, TOKEN_ENV)}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, pass_fds=fds
            )
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_for(self, pattern: str, timeout: float = 30.0, new_only: bool = True) -> str:
        """Wait until the log has a line matching 'pattern' (after the last
        match, with 'new_only'); return that line."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            text = self.log()
            start = self._read if new_only else 0
            for m in rx.finditer(text, start):
                line_end = text.find("\n", m.end())
                self._read = line_end if line_end >= 0 else len(text)
                line_start = text.rfind("\n", 0, m.start()) + 1
                return text[line_start : self._read]
            if self.proc is not None and self.proc.poll() is not None:
                raise ControllerError(
                    f"controller exited with {self.proc.returncode}:\n{text[-3000:]}"
                )
            time.sleep(0.05)
        raise ControllerError(
            f"no log line matching {pattern!r} in {timeout} s:\n{self.log()[-3000:]}"
        )

    def stop(self) -> None:
        """SIGTERM to our own child, by pid; SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
