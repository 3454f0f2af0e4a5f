"""The unsafe-program corpus: every program is refused, with a clear message.

Each tests/progs/unsafe/*.c says in its first line which message it must get
(`/* EXPECT: regex */`).  A refusal must name the instruction and, with BTF
line info, the source line.  In forced sandbox mode the same programs are
either refused or run with every access checked, never crashing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from okopy.bpf import vm
from okopy.bpf.toolchain import compile_program
from okopy.traffic import packets

UNSAFE = Path(__file__).resolve().parent.parent / "progs" / "unsafe"
SOURCES = sorted(UNSAFE.glob("*.c"))


def expectation(src: Path) -> str:
    m = re.match(r"/\* EXPECT: (.*) \*/", src.read_text())
    assert m is not None, f"{src.name} has no EXPECT line"
    return m.group(1)


@pytest.fixture(scope="module")
def unsafe_objects(tmp_path_factory: pytest.TempPathFactory, kernel_bpf: None) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("unsafe")
    return {s.stem: compile_program(s, out / f"{s.stem}.o").read_bytes() for s in SOURCES}


def test_corpus_is_large_enough() -> None:
    assert len(SOURCES) >= 25


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_refused_with_reason(unsafe_objects: dict[str, bytes], src: Path) -> None:
    with pytest.raises(vm.VmError) as info:
        vm.Namespace("unsafe").load(unsafe_objects[src.stem])
    err = info.value
    text = err.describe()
    assert re.search(expectation(src), text), text
    assert err.insn >= 0, text
    assert err.file.endswith(src.name), text
    assert err.line > 0, text


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_sandbox_refuses_or_contains(unsafe_objects: dict[str, bytes], src: Path) -> None:
    try:
        prog = vm.Namespace("sandbox").load(unsafe_objects[src.stem], sandbox="force")
    except vm.VmError as e:
        refusal = e.describe()
        assert refusal.strip() != ""
        return
    assert prog.info.mode == "sandbox"
    for pkt in packets.random_packets(seed=21, count=200):
        prog.run(pkt, in_port=1)
    assert prog.stats.runs == 200
