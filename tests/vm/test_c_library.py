"""libokovm's own C unit tests, plain and under ASan + UBSan."""

from __future__ import annotations

import os
import platform
import re
import subprocess

import pytest

from okopy.paths import Layout


@pytest.mark.parametrize("target", ["check", "check-asan"])
def test_c_unit_tests(layout: Layout, kernel_bpf: None, target: str) -> None:
    env = dict(os.environ)
    if platform.machine() == "x86_64":
        # The JIT must compile every generated program here, so that the
        # JIT-versus-interpreter comparisons compare two engines.
        env["OKOVM_EXPECT_JIT"] = "1"
    proc = subprocess.run(
        ["make", "-C", str(layout.vm_sources), "-j2", "--no-print-directory", target],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    m = re.search(r"(\d+) passed, (\d+) failed", out)
    assert m is not None, out[-3000:]
    assert int(m.group(1)) > 0
    assert m.group(2) == "0", out[-3000:]
