"""scripts/stress's bookkeeping (okopy/testing/stress.py)."""

from __future__ import annotations

from pathlib import Path

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
