"""Fixtures for tests that load programs into the VM and the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.bpf.vm import VmNotBuilt, library_path

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory, kernel_bpf: None) -> dict[str, bytes]:
    """Every filter in bpf/ and tests/progs/, compiled once per session."""
    if not library_path().exists():
        raise VmNotBuilt(f"{library_path()} missing: run make -C vm")
    out = tmp_path_factory.mktemp("objs")
    objs = {}
    for src in [
        *sorted((ROOT / "bpf").glob("*.c")),
        *sorted((ROOT / "tests/progs").glob("*.c")),
    ]:
        objs[src.stem] = compile_program(src, out / f"{src.stem}.o").read_bytes()
    return objs
