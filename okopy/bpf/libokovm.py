"""Loading libokovm.so through cffi (ABI mode), once per process.

okopy.bpf.vm (programs and maps) and okopy.bpf.btf (the BTF codec) both
call the library; the header vm/include/okovm.h is the declaration cffi
reads.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import cffi

from okopy.paths import default_layout


class VmNotBuilt(RuntimeError):
    """libokovm.so is not where it should be."""


def _cdef_text(header: Path) -> str:
    """The header without preprocessor lines and C++ guards, for cffi."""
    text = header.read_text()
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def library_path() -> Path:
    override = os.environ.get("OKOVM_LIB")
    return Path(override) if override else default_layout().vm_build / "libokovm.so"


@cache
def _lib() -> tuple[cffi.FFI, Any]:
    layout = default_layout()
    header = layout.vm_sources / "include" / "okovm.h"
    path = library_path()
    if not path.exists():
        raise VmNotBuilt(f"{path} not found: build it with `make -C {layout.vm_sources}`")
    ffi = cffi.FFI()
    ffi.cdef(_cdef_text(header))
    return ffi, ffi.dlopen(str(path))
