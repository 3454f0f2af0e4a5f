"""Compile filters: clang -O2 -g -target bpf, with libbpf's headers and ours."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from okopy.paths import default_layout

# Debian keeps <asm/types.h> for the host under the multiarch directory.
SYSTEM_INCLUDES = ("/usr/include/x86_64-linux-gnu",)


class CompileError(RuntimeError):
    """clang refused the source; carries its diagnostics."""


def include_dirs() -> list[Path]:
    return [default_layout().repo / "bpf" / "include"]


def compile_program(
    source: Path,
    output: Path | None = None,
    *,
    includes: Sequence[Path] = (),
    defines: Sequence[str] = (),
    clang: str | None = None,
) -> Path:
    """Compile 'source' to a BPF ELF object; returns its path."""
    cc = clang or shutil.which("clang")
    if cc is None:
        raise CompileError("clang not found: run scripts/setup (Debian clang)")
    out = output or source.with_suffix(".o")
    argv = [cc, "-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]
    argv += [f"-I{d}" for d in (*includes, *include_dirs())]
    argv += [f"-I{d}" for d in SYSTEM_INCLUDES]
    argv += [f"-D{d}" for d in defines]
    argv += ["-c", str(source), "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(f"clang failed on {source}:\n{proc.stderr.strip()}")
    return out
