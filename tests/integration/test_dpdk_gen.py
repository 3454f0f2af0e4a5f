"""bench/dpdk-gen.c refuses what it cannot do with a message naming it
(DPDK runs here without huge pages: these never send)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from okopy.bench.dpdkpath import build_generator
from okopy.lab.dpdk import RUNTIME_DIR
from okopy.ovs.instance import OvsTools
from okopy.paths import Layout

VDEV = ["--vdev", "net_null0", "--vdev", "net_null1"]


@pytest.fixture
def eal() -> Iterator[list[str]]:
    """EAL arguments without huge pages, with a runtime directory of the
    test's own, removed afterwards."""
    prefix = f"okopy-gentest-{os.getpid()}"
    yield ["-l", "0", "--no-huge", "--no-pci", "-m", "64", f"--file-prefix={prefix}",
           "--log-level=error"]  # fmt: skip
    shutil.rmtree(RUNTIME_DIR / prefix, ignore_errors=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flows", "0"], "--flows 0: give 1 to 65536"),
        (["--flows", "70000"], "--flows 70000: give 1 to 65536"),
        (["--seconds", "-1"], "--seconds: give seconds between 0 and 3600"),
        (["--dst-ip", "10.0.0"], "--dst-ip 10.0.0: give an IPv4 address"),
        (["--bogus"], "usage: dpdk-gen"),
        (["extra"], "unexpected argument extra"),
    ],
)
def test_bad_arguments(
    layout: Layout, ovs_tools: OvsTools, eal: list[str], args: list[str], message: str
) -> None:
    gen = build_generator(layout)
    proc = subprocess.run([str(gen), *eal, *VDEV, "--", *args], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1, proc
    assert f"dpdk-gen: {message}" in proc.stderr, proc.stderr


def test_two_ports_needed(layout: Layout, ovs_tools: OvsTools, eal: list[str]) -> None:
    gen = build_generator(layout)
    proc = subprocess.run([str(gen), *eal, "--vdev", "net_null0", "--"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1, proc
    assert "needs two ports (send on port 0, receive on port 1)" in proc.stderr


def test_reports_in_one_json_line(layout: Layout, ovs_tools: OvsTools, eal: list[str]) -> None:
    """Over net_null ports (which swallow what is sent and make up what is
    received): the counts and rates of the window, in one JSON line."""
    gen = build_generator(layout)
    proc = subprocess.run([str(gen), *eal, *VDEV, "--", "--seconds", "0.2", "--warmup", "0.1",
                           "--flows", "3"], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == {"seconds", "tx", "rx", "tx_pps", "rx_pps"}
    assert out["tx"] > 0
    assert out["rx"] > 0
    assert 0.2 <= out["seconds"] < 1
