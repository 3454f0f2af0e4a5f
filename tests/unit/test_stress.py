"""scripts/stress's bookkeeping (okopy/testing/stress.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from okopy.process import pid_alive, wait_gone
from okopy.testing.stress import Tally, junit_outcomes

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.integration.test_lab" name="test_up" time="1.0"/>
<testcase classname="tests.integration.test_lab" name="test_down" time="1.0">
  <failure message="boom">trace</failure></testcase>
<testcase classname="tests.integration.test_lab" name="test_err" time="1.0">
  <error message="fixture">trace</error></testcase>
<testcase classname="tests.integration.test_lab" name="test_skip" time="0">
  <skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def test_junit_outcomes_leave_out_skips(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    assert junit_outcomes(path) == [
        ("tests.integration.test_lab::test_up", True),
        ("tests.integration.test_lab::test_down", False),
        ("tests.integration.test_lab::test_err", False),
    ]


def test_report_names_every_test_that_failed_once() -> None:
    t = Tally()
    for ok in (True, False, True):
        t.add("ovs 103: okopy BPF", ok)
    t.add("a::b", True)
    assert t.report().splitlines() == [
        "FAILED 1 of 3: ovs 103: okopy BPF",
        "3 passed, 1 failed",
    ]


def test_hogs_end_when_the_stress_run_is_killed() -> None:
    # A stress run killed with SIGKILL (no finally runs) must not leave busy
    # loops running for the rest of their time.
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from okopy.testing.stress import start_hogs\n"
         "hogs = start_hogs(1, 600)\n"
         "print(hogs[0].pid, flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    hog = int(child.stdout.readline())
    assert pid_alive(hog)
    child.kill()
    child.wait()
    if not wait_gone(hog, 10):
        os.kill(hog, signal.SIGKILL)
        pytest.fail("the busy loop outlived its stress run")
