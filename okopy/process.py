"""Running external commands with errors a person can act on."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class CommandError(RuntimeError):
    """A command exited non-zero; the message names it and shows its output."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(
            f"`{' '.join(self.argv)}` exited with status {returncode}"
            + (f":\n{tail}" if tail else "")
        )


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = 120.0,
) -> str:
    """Run 'argv', return its standard output (stderr is kept for errors)."""
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout + proc.stderr)
    return proc.stdout


def pid_alive(pid: int) -> bool:
    """True while 'pid' runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to 'timeout' seconds for 'pid' to end; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def terminate(pid: int, timeout: float = 10.0) -> None:
    """End a process this project started, by its pid: SIGTERM, then SIGKILL."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5)
