"""The Open vSwitch series' coverage-guided fuzz targets (tests/oss-fuzz/
okopy_*_target.c in the patched tree, run by scripts/fuzz), each for a
bounded time.

OKOPY_FUZZ_SECONDS sets the time per target (default 45); longer runs by
hand: `scripts/fuzz ovs-msg SECONDS`.  scripts/fuzz builds the fuzzing
flavor of Open vSwitch (`okopy ovs build --flavor fuzz`, clang and
libclang-rt-14-dev, libc++-14-dev) on first use.  Inputs that once crashed
a target are hex cases in the series' tests/ofp-print.at and
tests/ofp-actions.at, or, when only the target's own checks catch them,
files in tests/integration/fuzz_regressions/TARGET/, replayed here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from okopy.paths import Layout
from okopy.testing.fuzzing import fuzz_seconds, run_target

TARGETS = {
    "ovs-msg": "okopy_msg_target",
    "ovs-action": "okopy_action_target",
}
REGRESSIONS = Path(__file__).parent / "fuzz_regressions"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_ovs_target(layout: Layout, target: str) -> None:
    # The first run builds Open vSwitch with coverage instrumentation.
    run = run_target(layout.repo, target, fuzz_seconds(), build_timeout=1800)
    print(f"{target}: {run.executions} executions, cov {run.coverage}, ft {run.features}")
    # Then every input that once crashed it runs cleanly.
    binary = layout.build / "ovs-fuzz" / "tests" / "oss-fuzz" / TARGETS[target]
    for path in sorted((REGRESSIONS / target).glob("crash-*")):
        proc = subprocess.run(
            [str(binary), str(path)], capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0, f"{target} {path.name}:\n{proc.stderr[-3000:]}"
