"""Run one scripts/fuzz target for a bounded time, as the tests do."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FuzzRun:
    """What libFuzzer's final statistics said about one run."""

    executions: int
    coverage: str  # libFuzzer's cov: the edges reached ("?" if not printed)
    features: str  # ft:


def fuzz_seconds() -> int:
    """Seconds per target: OKOPY_FUZZ_SECONDS, 45 by default."""
    return int(os.environ.get("OKOPY_FUZZ_SECONDS", "45"))


def run_target(repo: Path, target: str, seconds: int, build_timeout: float) -> FuzzRun:
    """Runs `scripts/fuzz TARGET SECONDS`; raises AssertionError, with the
    output's tail, when the target crashed or executed nothing.
    'build_timeout' is the time allowed beyond 'seconds' (a first run
    builds the target)."""
    proc = subprocess.run(
        [str(repo / "scripts" / "fuzz"), target, str(seconds)],
        capture_output=True, text=True, timeout=seconds + build_timeout, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{target} crashed:\n{out[-8000:]}"
    runs = re.search(r"stat::number_of_executed_units: (\d+)", out)
    done = re.findall(r"DONE +cov: (\d+) ft: (\d+)", out)
    assert runs is not None, out[-3000:]
    assert int(runs.group(1)) > 0, out[-3000:]
    cov, ft = done[-1] if done else ("?", "?")
    return FuzzRun(int(runs.group(1)), cov, ft)
