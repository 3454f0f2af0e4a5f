"""okopy.bpf.kernel loads what the kernel verifier accepts, however long its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.bpf.kernel import KernelError, KernelProgram
from okopy.bpf.toolchain import compile_program

# A bounded loop of 20,000 steps: the verifier walks every step on one path,
# about 100,000 instructions, several MiB of level-1 log.  The empty asm
# keeps clang from folding the loop away.
LONG_LOOP = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int long_loop(struct xdp_md *ctx)
{
    unsigned int i, acc = 0;

    for (i = 0; i < 20000; i++) {
        acc = acc * 31 + i;
        asm volatile("" : "+r"(acc));
    }
    return acc == 0 ? XDP_ABORTED : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
"""

BAD = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bad(struct xdp_md *ctx)
{
    return *(volatile unsigned char *) (long) ctx->data;  /* unchecked */
}

char _license[] SEC("license") = "GPL";
"""

FRAME = bytes(range(64))


def _build(tmp_path: Path, name: str, source: str) -> bytes:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    return compile_program(src, tmp_path / f"{name}.o").read_bytes()


def test_long_verifier_log_is_no_refusal(tmp_path: Path, kernel_bpf: None) -> None:
    """Asking for the log up front made the kernel refuse this valid
    program with ENOSPC (the log outgrew the 1 MiB buffer)."""
    with KernelProgram(_build(tmp_path, "long_loop", LONG_LOOP)) as prog:
        assert prog.run(FRAME).verdict == 2


def test_refusal_still_carries_the_log(tmp_path: Path, kernel_bpf: None) -> None:
    with pytest.raises(KernelError) as info:
        KernelProgram(_build(tmp_path, "bad", BAD))
    assert "invalid access to packet" in info.value.log
