"""The libokovm that ships (libokovm.so for Python, libokovm.a for
ovs-vswitchd) has no test entry points, and only kernel admission makes a
program verified (and so JIT-compiled).

The test-only functions (raw instruction loads, fault injection) live in
build/vm/libokovm-test.a, which only the C tests, fuzzers and benchmark
link."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from okopy.bpf import vm
from okopy.paths import Layout


def _nm(*args: str) -> str:
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not installed")
    proc = subprocess.run(["nm", *args], capture_output=True, text=True, check=True)
    return proc.stdout


def _public_functions(layout: Layout) -> set[str]:
    header = (layout.vm_sources / "include" / "okovm.h").read_text()
    return set(re.findall(r"\b(okovm_\w+)\(", header))


@pytest.fixture(scope="module")
def shipped(layout: Layout) -> tuple[Path, Path]:
    so = layout.vm_build / "libokovm.so"
    a = layout.vm_build / "libokovm.a"
    if not so.exists() or not a.exists():
        pytest.fail(f"{so} or {a} missing: run make -C vm")
    return so, a


def test_no_test_symbols(shipped: tuple[Path, Path]) -> None:
    so, a = shipped
    for out in (_nm("-D", str(so)), _nm(str(so)), _nm(str(a))):
        assert "okovm_test_" not in out


def test_so_exports_only_the_public_header(layout: Layout, shipped: tuple[Path, Path]) -> None:
    so, _ = shipped
    exported = {
        line.split()[-1]
        for line in _nm("-D", "--defined-only", str(so)).splitlines()
        if line.strip()
    }
    # Internal functions (okovm_prog_alloc, okovm_prog_finish...) are
    # hidden: only what okovm.h declares may be called from outside.
    assert exported <= _public_functions(layout), exported - _public_functions(layout)
    assert "okovm_prog_load" in exported


def test_forced_sandbox_is_not_verified(objects: dict[str, bytes]) -> None:
    ns = vm.Namespace("shipped")
    for jit in (True, False):
        info = ns.load(objects["blocklist"], sandbox="force", jit=jit).info
        assert info.mode == "sandbox"
        assert not info.kernel_verified
        assert not info.jit


def test_verified_means_admitted(objects: dict[str, bytes]) -> None:
    info = vm.Namespace("shipped").load(objects["blocklist"]).info
    assert info.mode == "verified"
    assert info.kernel_verified
    assert info.kernel_verify_ns > 0


CHILD = r"""
import sys
from okopy.bpf import vm
obj = open(sys.argv[1], "rb").read()
ns = vm.Namespace("nocaps")
for sandbox in ("never", "allow"):
    try:
        info = ns.load(obj, sandbox=sandbox).info
    except vm.VmError as e:
        print(sandbox, "refused", e.errno_name)
    else:
        print(sandbox, info.mode, int(info.kernel_verified), int(info.jit))
"""


def test_no_admission_no_verified(objects: dict[str, bytes], tmp_path: Path) -> None:
    """Without CAP_BPF the kernel cannot be asked: a load is refused, or
    with sandbox allowed runs in the sandbox, never verified or native."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    obj = tmp_path / "blocklist.o"
    obj.write_bytes(objects["blocklist"])
    proc = subprocess.run(
        [
            "setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all",
            "--", sys.executable, "-c", CHILD, str(obj),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["never refused EPERM", "allow sandbox 0 0"]
