"""okopy.lab.mininet: a Mininet network of okopy switches forwards, and a real
filter loaded into the patched switch drops what it should.

Mininet runs in a child process (mininet_child.py, Mininet's Python API)
inside a network namespace and a PID namespace made for it: its links,
taps and daemons never meet the machine's, and when the child ends the
kernel ends everything it started.  The child confines Mininet's cleanup and
fixLimits (FACTS.md: they act machine-wide).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.netns import Namespace
from okopy.ovs.instance import OvsTools
from okopy.process import terminate
from okopy.testing.fixtures import unavailable
from okopy.testing.policies import blocklist_policy

ROOT = Path(__file__).resolve().parent.parent.parent
CHILD = Path(__file__).resolve().parent / "mininet_child.py"
DEBIAN_MININET = Path("/usr/lib/python3/dist-packages/mininet/net.py")

POLICY = blocklist_policy("10.0.0.3")


@pytest.fixture(scope="module")
def mininet_installed() -> None:
    if not DEBIAN_MININET.exists() or not Path("/usr/bin/mnexec").exists():
        unavailable("Mininet is not installed: run scripts/setup (Debian package mininet)")


def run_child(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run mininet_child.py in a new network + PID namespace; return its
    JSON report and its output.  Whatever it leaves is ended by pid."""
    out = tmp_path / "report.json"
    ns = Namespace.create("mn")
    argv = ns.argv(
        # --kill-child: if unshare dies, its child (pid 1 of the new PID
        # namespace) is killed, and with it every process of that namespace.
        ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
         sys.executable, str(CHILD), "--out", str(out), *args]
    )  # fmt: skip
    env = dict(os.environ, OKOPY_MININET_DIR=str(tmp_path / "mn"))
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        terminate(proc.pid)
        output, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            terminate(proc.pid)
        # Anything still in the namespace is ours (the child's daemons if the
        # PID namespace did not take them down): end it by pid.
        for pid in ns_pids(ns):
            terminate(pid)
        ns.delete()
    report = json.loads(out.read_text()) if out.exists() else {}
    assert proc.returncode == 0, f"child exited {proc.returncode}:\n{output[-4000:]}"
    assert report.get("done"), f"child did not finish:\n{output[-4000:]}"
    return report, output


def ns_pids(ns: Namespace) -> list[int]:
    if not ns.alive:
        return []
    out = subprocess.run(
        ["ip", "netns", "pids", ns.name], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def blocked_packets(dump: str) -> int:
    """Packets counted by the blocklist's entry for 10.0.0.3 (struct
    block_stats: packets, bytes; u64 little-endian)."""
    for line in dump.splitlines():
        if "key=0a000003" in line:
            value = line.split("value=")[1].strip()
            return int.from_bytes(bytes.fromhex(value[:16]), "little")
    raise AssertionError(f"no entry for 10.0.0.3 in:\n{dump}")


def check_clean_stop(report: dict[str, Any]) -> None:
    """net.stop() ended the switch's daemons and left nothing running."""
    assert report["ovs_alive_after_stop"] == []
    assert report["leftover"] == {}


@pytest.mark.usefixtures("mininet_installed")
def test_filter_loaded_with_ofctl_drops_blocked_traffic(
    ovs_tools: OvsTools, tmp_path: Path
) -> None:
    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "blocklist.o")
    report, output = run_child(tmp_path, "--scenario", "ofctl", "--prog", str(obj))

    assert report["datapath_type"] == "netdev"
    assert report["rundir"] == str(tmp_path / "mn" / "ovs")
    assert report["hosts"] == {"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3"}
    # Mininet's own verdicts (percent dropped), not its exit status.
    assert report["pingall"] == 0.0, output
    assert "*** Results: 0% dropped (6/6 received)" in output
    assert report["h1_h2"] == 0.0, output
    assert report["h1_h3"] == 100.0, output
    assert report["h2_h3"] == 100.0, output
    assert report["h1_h3_unblocked"] == 0.0, output
    assert blocked_packets(report["map"]) >= 4, report["map"]
    assert 'name="block"' in report["progs"], report["progs"]
    assert "bpf(prog=1,table=1)" in report["flows"]
    check_clean_stop(report)


@pytest.mark.usefixtures("mininet_installed")
def test_okopy_controller_deploys_the_policy(ovs_tools: OvsTools, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    report, output = run_child(tmp_path, "--scenario", "controller", "--policy", str(policy))

    assert "1 LoadProgram" in report["reconciled"], report["reconciled"]
    assert report["fail_mode"] == "secure"
    assert report["h1_h2"] == 0.0, output
    assert report["h1_h3"] == 100.0, output
    assert 'name="block"' in report["progs"], report["progs"]
    assert "bpf(prog=1,table=1)" in report["flows"], report["flows"]
    assert (tmp_path / "mn" / "c0.log").exists()
    check_clean_stop(report)
