"""Every prefix of the patch series builds and passes checkpatch.

A reviewer reads ovs-patches/ one patch at a time, and Open vSwitch asks
that each patch build on its own.  `check_series()` applies the series to
Debian's Open vSwitch in a tree of its own (build/check-series/ovs-src, never
build/ovs-src, which holds work in progress), one patch after the other;
after each it runs the tree's `utilities/checkpatch.py` on the patch file
and builds incrementally (one configure, ccache, -Werror as the plain
build).  A patch that touches the autotools inputs gets `boot.sh` and a
new configure first.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from okopy.ovs.build import (
    AUTOTOOLS_INPUTS,
    PLAIN,
    BuildError,
    _env,
    build_vm,
    configure_args,
)
from okopy.ovs.source import Log, Upstream, _unpack, find_upstream, series
from okopy.paths import Layout


@dataclass(frozen=True)
class PatchCheck:
    """What one patch of the series gave."""

    number: int
    name: str
    applied: bool
    checkpatch: str  # "" when clean, else checkpatch's complaints
    build: str  # "" when the prefix built, else the end of make's errors
    seconds: float
    # None when not run, "" when the prefix's tests passed, else the
    # failing tests' lines of the testsuite's summary.
    tests: str | None = None

    @property
    def ok(self) -> bool:
        return self.applied and not self.checkpatch and not self.build and not self.tests

    def summary(self) -> str:
        if not self.applied:
            what = "does not apply"
        else:
            parts = [
                "checkpatch ok" if not self.checkpatch else "checkpatch FAILED",
                "builds" if not self.build else "build FAILED",
            ]
            if self.tests is not None:
                parts.append("tests pass" if not self.tests else "tests FAILED")
            what = ", ".join(parts)
        return f"{self.number:04d} {self.name}: {what} ({self.seconds:.0f} s)"


def touches_autotools(patch: Path) -> bool:
    """Whether 'patch' changes configure.ac, acinclude.m4 or m4/."""
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("diff --git a/"):
            path = line.split()[2][2:]
            if path.startswith(AUTOTOOLS_INPUTS):
                return True
    return False


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    return proc.returncode, proc.stdout + proc.stderr


def _tail(text: str, lines: int = 20) -> str:
    errors = [ln for ln in text.splitlines() if "error" in ln.lower() or "***" in ln]
    return "\n".join((errors or text.splitlines())[-lines:])


class SeriesChecker:
    """The scratch tree and its build, one patch at a time."""

    def __init__(self, layout: Layout, jobs: int, log: Log, upstream: Upstream | None = None):
        self.layout = layout
        self.jobs = jobs
        self.log = log
        self.upstream = upstream or find_upstream()
        # The same names as build/ovs-src and build/ovs, one level down: the
        # paths ccache sees (relative to CCACHE_BASEDIR, build/) then match
        # those of the usual build, whose objects it can reuse.
        self.work = layout.build / "check-series"
        self.src = self.work / "ovs-src"
        self.out = self.work / "ovs"
        self.env = _env(layout, PLAIN)

    def start(self) -> None:
        """Debian's Open vSwitch, unpatched, configured in an empty build
        directory; libokovm built."""
        build_vm(self.layout, self.jobs, self.log)
        _unpack(self.upstream, self.src, self.log)
        # The files just unpacked carry the tarball's dates, older than
        # what an earlier check built from the whole series (odp-netlink.h,
        # for one): make would keep those.  ccache makes the fresh build
        # cheap.
        if self.out.exists():
            shutil.rmtree(self.out)
        self.configure(boot=False)

    def configure(self, boot: bool) -> None:
        if boot:
            self.log("  autotools inputs changed: boot.sh and configure")
            rc, text = _run(["./boot.sh"], self.src, self.env)
            if rc:
                raise BuildError(f"boot.sh failed:\n{_tail(text)}")
        self.out.mkdir(parents=True, exist_ok=True)
        rc, text = _run([str(self.src / "configure"), *configure_args(PLAIN)], self.out, self.env)
        (self.out / "configure.out").write_text(text)
        if rc:
            raise BuildError(f"configure failed (see {self.out}/config.log):\n{_tail(text)}")

    def apply(self, patch: Path) -> str:
        """'' if 'patch' applied, else git am's complaint (the tree is left
        as it was)."""
        rc, text = _run(["git", "am", "-q", "--whitespace=nowarn", str(patch.resolve())], self.src)
        if rc:
            _run(["git", "am", "--abort"], self.src)
            return text.strip()
        return ""

    def checkpatch(self, patch: Path) -> str:
        rc, text = _run(
            ["/usr/bin/python3", str(self.src / "utilities" / "checkpatch.py"), str(patch)],
            self.src,
        )
        return text.strip() if rc else ""

    def make(self) -> str:
        rc, text = _run(["make", f"-j{self.jobs}", "V=0"], self.out, self.env)
        (self.work / "last-make.log").write_text(text)
        return _tail(text) if rc else ""

    def test(self, keywords: str) -> str:
        """Runs the prefix's own tests of 'keywords' (never 'hidden': one
        dials an address outside this machine); "" if they passed, else
        the lines of the tests that failed."""
        flags = f"-j{2 * self.jobs} -k {keywords},!hidden"
        rc, text = _run(["make", "check", f"TESTSUITEFLAGS={flags}"], self.out, self.env)
        (self.work / "last-check.log").write_text(text)
        if not rc:
            return ""
        failed = [ln.strip() for ln in text.splitlines() if "FAILED (" in ln]
        return "\n".join(failed) or _tail(text)


def check_series(
    layout: Layout,
    jobs: int = 2,
    first: int = 1,
    last: int | None = None,
    log: Log = print,
    tests: str | None = None,
) -> list[PatchCheck]:
    """Checks patches 'first'..'last' (1-based, inclusive) of ovs-patches/.
    The patches before 'first' are applied and built once, unreported.
    With 'tests' (autotest keywords, such as "okopy"), each prefix that
    builds also runs those of its own tests."""
    patches = series(layout.patches)
    last = len(patches) if last is None else last
    if not 1 <= first <= last <= len(patches):
        raise ValueError(f"patches {first}..{last}: the series has {len(patches)}")
    checker = SeriesChecker(layout, jobs, log)
    checker.start()
    base = patches[: first - 1]
    for patch in base:
        why = checker.apply(patch)
        if why:
            raise BuildError(f"{patch.name} does not apply:\n{why}")
    if base:
        log(f"patches 1..{first - 1} applied; building them as the base")
        if any(touches_autotools(p) for p in base):
            checker.configure(boot=True)
        why = checker.make()
        if why:
            raise BuildError(f"the base (patches 1..{first - 1}) does not build:\n{why}")
    results = []
    for number, patch in enumerate(patches[first - 1 : last], start=first):
        start = time.monotonic()
        name = patch.stem.split("-", 1)[1] if "-" in patch.stem else patch.stem
        problem = checker.apply(patch)
        if problem:
            result = PatchCheck(number, name, False, "", problem, time.monotonic() - start)
        else:
            style = checker.checkpatch(patch)
            if touches_autotools(patch):
                checker.configure(boot=True)
            built = checker.make()
            tested = checker.test(tests) if tests and not built else None
            result = PatchCheck(number, name, True, style, built, time.monotonic() - start, tested)
        log(result.summary())
        for text in (result.checkpatch, result.build, result.tests or ""):
            for line in text.splitlines():
                log(f"    {line}")
        results.append(result)
        if not result.applied:
            break
    return results
