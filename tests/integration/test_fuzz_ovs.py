"""The Open vSwitch series' coverage-guided fuzz targets (tests/oss-fuzz/
okopy_*_target.c in the patched tree, run by scripts/fuzz), each for a
bounded time.

OKOPY_FUZZ_SECONDS sets the time per target (default 45); longer runs by
hand: `scripts/fuzz ovs-msg SECONDS`.  scripts/fuzz builds the fuzzing
flavor of Open vSwitch (`okopy ovs build --flavor fuzz`, clang and
libclang-rt-14-dev, libc++-14-dev) on first use.  Inputs that once crashed
a target are hex cases in the series' tests/ofp-print.at and
tests/ofp-actions.at."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from okopy.paths import Layout

TARGETS = ("ovs-msg", "ovs-action")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_ovs_target(layout: Layout, target: str) -> None:
    seconds = int(os.environ.get("OKOPY_FUZZ_SECONDS", "45"))
    proc = subprocess.run(
        [str(layout.repo / "scripts" / "fuzz"), target, str(seconds)],
        capture_output=True,
        text=True,
        # The first run builds Open vSwitch with coverage instrumentation.
        timeout=seconds + 1800,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{target} crashed:\n{out[-4000:]}"
    runs = re.search(r"stat::number_of_executed_units: (\d+)", out)
    done = re.findall(r"DONE +cov: (\d+) ft: (\d+)", out)
    assert runs is not None, out[-3000:]
    assert int(runs.group(1)) > 0, out[-3000:]
    cov, ft = done[-1] if done else ("?", "?")
    print(f"{target}: {runs.group(1)} executions, cov {cov}, ft {ft}")
