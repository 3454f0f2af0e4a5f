"""Run the tests that touch real daemons again and again on a busy machine.

`scripts/stress` (python -m okopy.testing.stress): busy loops keep every
core occupied while rounds of (1) the `okopy` keyword of Open vSwitch's
suite, main run only (a failure here is what a recheck would have hidden)
and (2) the pytest integration tier run one after the other until the time
is up.  Every test execution is counted; at the end it prints `N passed,
M failed` and the name of each test that failed at least once, with the
logs kept under build/stress/.  A round that has started runs to its end,
each step bounded by its own timeout, so the command ends at most one round
after the time given.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from okopy.ovs.autotest import AutotestOutputError, run_keyword
from okopy.paths import Layout, default_layout

STEP_TIMEOUT = 45 * 60.0


@dataclass
class Tally:
    """Passes and failures per test name, over all rounds."""

    passed: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, ok: bool) -> None:
        (self.passed if ok else self.failed)[name] += 1

    def report(self) -> str:
        lines = []
        for name, n in sorted(self.failed.items()):
            runs = n + self.passed[name]
            lines.append(f"FAILED {n} of {runs}: {name}")
        lines.append(f"{sum(self.passed.values())} passed, {sum(self.failed.values())} failed")
        return "\n".join(lines)


def junit_outcomes(path: Path) -> list[tuple[str, bool]]:
    """(test id, passed) for every test case in a pytest JUnit XML report;
    skipped cases are left out."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("skipped") is not None:
            continue
        bad = case.find("failure") is not None or case.find("error") is not None
        out.append((name, not bad))
    return out


def start_hogs(n: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Starts 'n' busy loops that end by themselves after 'seconds', or as
    soon as this process is gone (however it ended)."""
    loop = (
        "import os, time\n"
        f"end = time.monotonic() + {seconds}\n"
        f"while time.monotonic() < end and os.getppid() == {os.getpid()}: pass\n"
    )
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(n)]


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for p in hogs:
        p.terminate()
    for p in hogs:
        p.wait()


def ovs_round(layout: Layout, keyword: str, jobs: int, keep: Path, tally: Tally) -> str:
    try:
        result = run_keyword(
            layout.ovs_build, keyword, jobs=jobs, recheck=False, keep_root=keep,
            timeout=STEP_TIMEOUT,
        )  # fmt: skip
    except (AutotestOutputError, subprocess.TimeoutExpired) as e:
        tally.add(f"ovs {keyword}: the suite itself", False)
        return f"ovs {keyword}: {e}"
    failed = {o.number for o in result.main.failed}
    for o in result.main.outcomes:
        if o.result != "skipped":
            tally.add(f"ovs {o.name}", o.number not in failed)
    return f"ovs {keyword}: {result.main.passed} passed, {len(failed)} failed"


def pytest_round(layout: Layout, select: list[str], keep: Path, n: int, tally: Tally) -> str:
    report = keep / f"pytest-round{n}.xml"
    keep.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OKOPY_REQUIRE_INTEGRATION="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--junitxml={report}", *select]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, cwd=layout.repo, env=env, timeout=STEP_TIMEOUT, check=False,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        tally.add("pytest: the run itself (timed out)", False)
        return "pytest: timed out"
    if not report.exists():
        tally.add("pytest: the run itself (no report)", False)
        (keep / f"pytest-round{n}.log").write_text(proc.stdout)
        return f"pytest: exit {proc.returncode}, no report"
    outcomes = junit_outcomes(report)
    for name, ok in outcomes:
        tally.add(name, ok)
    bad = sum(1 for _, ok in outcomes if not ok)
    if bad:
        (keep / f"pytest-round{n}.log").write_text(proc.stdout)
    else:
        report.unlink()
    return f"pytest: {len(outcomes) - bad} passed, {bad} failed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/stress",
        description="Run the integration tier and Open vSwitch's okopy keyword "
        "repeatedly under a CPU hog; report every test that failed once.",
    )
    ap.add_argument("--minutes", type=float, default=30.0, help="start no round after this")
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy loops")
    ap.add_argument("--keyword", default="okopy", help="OVS autotest keyword ('' for none)")
    ap.add_argument("--jobs", type=int, default=8, help="autotest -j")
    ap.add_argument("--no-pytest", action="store_true", help="only the OVS keyword")
    ap.add_argument(
        "pytest_args", nargs="*", help="what pytest runs each round (default: the "
        "integration tier less its runs of Open vSwitch's suite, which --keyword does)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.no_pytest:
        args.pytest_args = []
    elif not args.pytest_args:
        args.pytest_args = ["-m", "integration", "-k", "not test_ovs_testsuite",
                            "tests/integration"]  # fmt: skip

    layout = default_layout()
    keep = layout.build / "stress" / time.strftime("%Y%m%d-%H%M%S")
    tally = Tally()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    # The hogs outlive the last round that may start by one round at most.
    hogs = start_hogs(args.hogs, args.minutes * 60 + 2 * STEP_TIMEOUT)
    rounds = 0
    # SIGTERM ends the run like ^C: the running step's command is killed (by
    # subprocess.run) and the hogs are stopped.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        while time.monotonic() < deadline:
            rounds += 1
            said = []
            if args.keyword:
                said.append(ovs_round(layout, args.keyword, args.jobs, keep, tally))
            if args.pytest_args:
                said.append(pytest_round(layout, args.pytest_args, keep, rounds, tally))
            mins = (time.monotonic() - start) / 60
            print(f"round {rounds} ({mins:.1f} min): {'; '.join(said)}", flush=True)
    finally:
        stop_hogs(hogs)
    print(f"stress: {rounds} rounds in {(time.monotonic() - start) / 60:.1f} min "
          f"under {args.hogs} busy loops; logs of failures under {keep}")  # fmt: skip
    print(tally.report())
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
