"""libokovm's own C unit tests, plain and under ASan + UBSan."""

from __future__ import annotations

import re
import subprocess

import pytest

from okopy.paths import Layout


@pytest.mark.parametrize("target", ["check", "check-asan"])
def test_c_unit_tests(layout: Layout, kernel_bpf: None, target: str) -> None:
    proc = subprocess.run(
        ["make", "-C", str(layout.vm_sources), "-j2", "--no-print-directory", target],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    m = re.search(r"(\d+) passed, (\d+) failed", out)
    assert m is not None, out[-3000:]
    assert int(m.group(1)) > 0
    assert m.group(2) == "0", out[-3000:]
