"""libokovm's coverage-guided fuzz targets (vm/fuzz/, run by scripts/fuzz),
each for a bounded time, and the inputs that once crashed them.

OKOPY_FUZZ_SECONDS sets the time per target (default 45); longer runs by
hand: `scripts/fuzz TARGET SECONDS`.  Each run grows the corpus in
build/fuzz/TARGET/corpus, so CI's runs add up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from okopy.paths import Layout
from okopy.testing.fuzzing import fuzz_seconds, run_target

TARGETS = {
    "vm-btf": "fuzz-btf",
    "vm-elf": "fuzz-elf",
    "vm-verify": "fuzz-verify",
    "vm-kernel-diff": "fuzz-kernel-diff",
}


@pytest.fixture(scope="module")
def fuzzers(layout: Layout, kernel_bpf: None) -> Path:
    """The libFuzzer binaries, built (clang with libclang-rt-14-dev)."""
    proc = subprocess.run(
        ["make", "-C", str(layout.vm_sources), "-j2", "--no-print-directory", "fuzz"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout + proc.stderr
    hint = " (libclang-rt-14-dev missing? run scripts/setup)" if "libclang_rt" in out else ""
    assert proc.returncode == 0, f"make fuzz failed{hint}:\n{out[-3000:]}"
    return layout.vm_build / "fuzz"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target(layout: Layout, fuzzers: Path, target: str) -> None:
    run = run_target(layout.repo, target, fuzz_seconds(), build_timeout=600)
    print(f"{target}: {run.executions} executions, coverage {run.coverage}")


def _regressions(layout: Layout) -> list[tuple[str, Path]]:
    root = layout.vm_sources / "fuzz" / "regressions"
    return [
        (target, path)
        for target in sorted(TARGETS)
        for path in sorted((root / target).glob("*"))
        if path.is_file()
    ]


def test_fuzz_regressions(layout: Layout, fuzzers: Path) -> None:
    """Every input that once crashed a target now runs cleanly."""
    cases = _regressions(layout)
    for target, path in cases:
        proc = subprocess.run(
            [str(fuzzers / TARGETS[target]), str(path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, f"{target} {path.name}:\n{proc.stderr[-3000:]}"
