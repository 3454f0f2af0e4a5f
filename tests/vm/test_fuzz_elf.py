"""A short fuzz run: mutated objects are refused cleanly, never crash.

The loop runs in a child process so that a crash is reported with the
input that caused it instead of taking the test run down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = r"""
import random, sys
from okopy.bpf import vm
obj = open(sys.argv[1], "rb").read()
rng = random.Random(int(sys.argv[2]))
ns = vm.Namespace("fuzz")
loaded = refused = 0
for i in range(int(sys.argv[3])):
    b = bytearray(obj)
    how = rng.randrange(4)
    if how == 0:
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif how == 1:
        b = b[: rng.randrange(len(b))]
    elif how == 2:
        # Section header table: offsets and sizes are the juiciest fields.
        shoff = int.from_bytes(b[40:48], "little")
        pos = shoff + rng.randrange(max(1, len(b) - shoff))
        b[pos : pos + 8] = rng.randbytes(8)
    else:
        pos = rng.randrange(len(b))
        b[pos : pos + 4] = (0xFFFFFFF0 + rng.randrange(16)).to_bytes(4, "little")
    open(sys.argv[4], "wb").write(b)  # the input, kept if we crash
    try:
        prog = ns.load(bytes(b), sandbox="force")
        for pkt in (bytes(64), bytes(14), b"\x45" * 100):
            prog.run(pkt)
        loaded += 1
    except vm.VmError as e:
        assert str(e), "empty error message"
        refused += 1
print(loaded, refused)
"""


def test_mutated_objects(objects: dict[str, bytes], tmp_path: Path) -> None:
    obj = tmp_path / "blocklist.o"
    obj.write_bytes(objects["blocklist"])
    last = tmp_path / "last-input.o"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(obj), "1", "400", str(last)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (
        f"crashed (status {proc.returncode}) on {last}:\n{proc.stderr[-2000:]}"
    )
    loaded, refused = map(int, proc.stdout.split())
    assert loaded + refused == 400
    assert refused > 100
