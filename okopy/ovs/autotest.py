"""Open vSwitch's test suite (GNU autotest): run keyword sets, read results.

Autotest prints a success summary on standard output and a failure summary
("ERROR: N tests were run,\\nM failed unexpectedly.") on standard error, and
`make check RECHECK=yes` appends a second run, of the failed tests alone, to
the same streams.  Reading a total out of the two streams joined therefore
finds whichever summary comes first, which once turned a failed main run
into "1 test was successful".  Here each invocation of the suite is run and
read on its own, with both streams merged in order: the main run, then,
if it failed, a recheck of its failures.  `parse()` is pure and is tested on
captured outputs; `run_keyword()` does the I/O.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "All 44 tests were successful.", "1 test was successful.", "ERROR: 44 tests
# were run,", "3 tests behaved as expected.": exactly one per invocation.
_TOTAL = re.compile(
    r"^(?:ERROR: )?(?:All )?(\d+) tests? (?:was|were) "
    r"(successful|run|behaved as expected)",
    re.MULTILINE,
)
_SKIPPED = re.compile(r"^(\d+) tests? (?:was|were) skipped\.", re.MULTILINE)
# One line per test as it ends: "103: okopy BPF - ... FAILED (library.at:455)";
# the title is padded with spaces before the result.
_OUTCOME = re.compile(
    r"^\s*(\d+): (.*?)\s+(ok|skipped|FAILED|expected failure|UNEXPECTED PASS)"
    r"(?: \(([^)]*)\))?\s*$",
    re.MULTILINE,
)


class AutotestOutputError(ValueError):
    """The text is not the output of exactly one autotest run."""


@dataclass(frozen=True)
class Outcome:
    """How one test ended."""

    number: int
    title: str
    result: str  # ok, skipped, FAILED, expected failure, UNEXPECTED PASS
    where: str | None  # "file.at:line" for failures and skips

    @property
    def name(self) -> str:
        return f"{self.number}: {self.title}"


@dataclass(frozen=True)
class Summary:
    """The result of one invocation of the suite."""

    run: int  # tests run, skipped ones not included
    skipped: int
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.result in ("FAILED", "UNEXPECTED PASS"))

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.result in ("ok", "expected failure"))

    @property
    def ok(self) -> bool:
        return not self.failed


def parse(text: str) -> Summary:
    """Reads the result of one autotest invocation from its output (standard
    output and standard error, in any order).  Raises AutotestOutputError
    when the text holds no summary or more than one (two runs' outputs, as
    `make check RECHECK=yes` prints), or when the per-test lines disagree
    with the summary."""
    text = _ANSI.sub("", text)
    totals = _TOTAL.findall(text)
    if not totals:
        raise AutotestOutputError("no autotest summary ('N tests were ...') in the output")
    if len(totals) > 1:
        raise AutotestOutputError(
            f"{len(totals)} autotest summaries in one output: read each run on its own"
        )
    run = int(totals[0][0])
    skipped_m = _SKIPPED.findall(text)
    skipped = int(skipped_m[0]) if skipped_m else 0
    outcomes: dict[int, Outcome] = {}
    for number, title, result, where in _OUTCOME.findall(text):
        outcomes[int(number)] = Outcome(int(number), title, result, where or None)
    ordered = tuple(outcomes[n] for n in sorted(outcomes))
    if outcomes and len(outcomes) != run + skipped:
        raise AutotestOutputError(
            f"the summary counts {run + skipped} tests ({run} run, {skipped} skipped) "
            f"but {len(outcomes)} ended in the output"
        )
    failed_total = totals[0][1] == "run"
    if ordered and failed_total != any(o.result in ("FAILED", "UNEXPECTED PASS") for o in ordered):
        raise AutotestOutputError("the summary and the per-test lines disagree on failures")
    return Summary(run=run, skipped=skipped, outcomes=ordered)


@dataclass(frozen=True)
class KeywordResult:
    """One keyword set: the main run and, if it failed, the recheck."""

    keyword: str
    main: Summary
    recheck: Summary | None
    kept: Path | None  # the main run's logs of its failures

    @property
    def rechecked_ok(self) -> tuple[Outcome, ...]:
        """Tests that failed in the main run and passed on recheck."""
        if self.recheck is None:
            return ()
        still = {o.number for o in self.recheck.failed}
        return tuple(o for o in self.main.failed if o.number not in still)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """Tests that failed for good: in the recheck, or in the main run
        when there was no recheck."""
        if self.recheck is None:
            return self.main.failed
        return self.recheck.failed


def _invoke(build: Path, flags: str, timeout: float) -> str:
    proc = subprocess.run(
        ["make", "-C", str(build), "check", f"TESTSUITEFLAGS={flags}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    return proc.stdout


def keep_failures(build: Path, summary: Summary, dest: Path) -> Path:
    """Copies the suite's log and the directories of the failed tests of
    'summary' (the run that just ended in 'build') into 'dest'."""
    tests = build / "tests"
    dest.mkdir(parents=True, exist_ok=True)
    log = tests / "testsuite.log"
    if log.exists():
        shutil.copy2(log, dest / "testsuite.log")
    for o in summary.failed:
        src = tests / "testsuite.dir" / f"{o.number:04d}"
        if src.is_dir():
            shutil.copytree(src, dest / src.name, symlinks=True, dirs_exist_ok=True)
    return dest


def run_keyword(
    build: Path,
    keyword: str,
    *,
    jobs: int = 8,
    recheck: bool = True,
    keep_root: Path | None = None,
    timeout: float = 3000,
) -> KeywordResult:
    """Runs the tests of 'keyword' (never the hidden ones: one of them dials
    an address outside this machine) in the Open vSwitch build 'build'.  On
    failure, the main run's logs are kept under 'keep_root' (before the
    recheck overwrites them) and, if 'recheck', the failed tests run once
    more, one at a time, as OVS's RECHECK=yes does."""
    # One -k with a comma means "all of these"; two -k would mean "either".
    main_out = _invoke(build, f"-j{jobs} -k {keyword},!hidden", timeout)
    try:
        main = parse(main_out)
    except AutotestOutputError as e:
        tail = "\n".join(main_out.splitlines()[-30:])
        raise AutotestOutputError(f"{keyword}: {e}\n{tail}") from None
    kept = None
    if main.failed and keep_root is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = keep_failures(build, main, keep_root / f"{keyword}-{stamp}")
    again = None
    if main.failed and recheck:
        again = parse(_invoke(build, "--recheck", timeout))
    return KeywordResult(keyword=keyword, main=main, recheck=again, kept=kept)
