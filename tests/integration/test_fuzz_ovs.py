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

import pytest

from okopy.paths import Layout
from okopy.testing.fuzzing import fuzz_seconds, run_target

TARGETS = ("ovs-msg", "ovs-action")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_ovs_target(layout: Layout, target: str) -> None:
    # The first run builds Open vSwitch with coverage instrumentation.
    run = run_target(layout.repo, target, fuzz_seconds(), build_timeout=1800)
    print(f"{target}: {run.executions} executions, cov {run.coverage}, ft {run.features}")
