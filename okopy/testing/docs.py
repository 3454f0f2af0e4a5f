"""The documentation's command blocks, run as written (tests/integration/
test_docs.py; docs/development.md, "Documentation that runs").

A page is read as a list of fenced blocks.  A block may be preceded by a
directive, an HTML comment that a reader of the rendered page does not see:

    <!-- doctest: skip REASON -->    not run: illustrative, or run elsewhere
    <!-- doctest: file NAME -->      its text is written to NAME first
    <!-- doctest: output -->         what the previous block printed: each
                                     line must appear in that output, in
                                     order ("..." lines stand for any)

and a page may end its blocks with

    <!-- doctest: cleanup COMMAND --> run at the end even after a failure

`sh` blocks run in bash with `-e -o pipefail`, one after the other in one
working directory, with exported variables carried from block to block;
`python` blocks run in the project's Python.  Blocks of other languages
run only as files (`file NAME`).  Every `sh` and `python` block runs
unless it says why not.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = ("sh", "python")
_FENCE = re.compile(r"^(`{3,})([\w+-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*doctest:\s*(\w+)\s*(.*?)\s*-->\s*$")
DIRECTIVES = ("skip", "file", "output", "cleanup")


class DocError(ValueError):
    """A page's blocks or directives are malformed."""


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directive: str = ""  # skip, file, output or ""
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.directive not in ("skip", "output")


@dataclass(frozen=True)
class Page:
    path: str
    blocks: tuple[Block, ...]
    cleanup: tuple[str, ...]


def parse(text: str, path: str = "<page>") -> Page:
    """The fenced blocks of a markdown page, with their directives."""
    blocks: list[Block] = []
    cleanup: list[str] = []
    pending: tuple[str, str, int] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        d = _DIRECTIVE.match(line)
        if d:
            name, arg = d.group(1), d.group(2)
            if name not in DIRECTIVES:
                raise DocError(f"{path}:{i + 1}: unknown doctest directive {name!r} "
                               f"(known: {', '.join(DIRECTIVES)})")  # fmt: skip
            if name in ("skip", "file", "cleanup") and not arg:
                what = {"skip": "a reason", "file": "a file name", "cleanup": "a command"}[name]
                raise DocError(f"{path}:{i + 1}: doctest {name} needs {what}")
            if name == "cleanup":
                cleanup.append(arg)
            else:
                pending = (name, arg, i + 1)
            i += 1
            continue
        f = _FENCE.match(line)
        if not f:
            if line.strip() and pending is not None:
                raise DocError(f"{path}:{pending[2]}: doctest {pending[0]} is not followed by "
                               "a code block")  # fmt: skip
            i += 1
            continue
        fence, language = f.group(1), f.group(2)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if end is None:
            raise DocError(f"{path}:{i + 1}: code block never closed")
        body = "\n".join(lines[i + 1 : end]) + "\n"
        name, arg = (pending[0], pending[1]) if pending else ("", "")
        blocks.append(Block(path, i + 1, language, body, name, arg))
        pending = None
        i = end + 1
    if pending is not None:
        raise DocError(f"{path}:{pending[2]}: doctest {pending[0]} is not followed by a code block")
    for b in blocks:
        if b.directive == "output" and b.language in RUN_LANGUAGES:
            raise DocError(f"{b.where}: an output block has no language ({b.language!r})")
    _check_outputs(blocks)
    return Page(path, tuple(blocks), tuple(cleanup))


def _check_outputs(blocks: Sequence[Block]) -> None:
    previous: Block | None = None
    for b in blocks:
        if b.directive == "output" and (previous is None or not previous.runs):
            raise DocError(f"{b.where}: an output block must follow a block that runs")
        if b.runs or b.directive == "output":
            previous = b


def missing_lines(expected: str, output: str) -> list[str]:
    """The lines of 'expected' that 'output' lacks, in order; '...' lines
    match anything.  Lines compare without surrounding spaces."""
    got = [line.strip() for line in output.splitlines()]
    pos = 0
    missing = []
    for want in (line.strip() for line in expected.splitlines()):
        if not want or want == "...":
            continue
        try:
            pos = got.index(want, pos) + 1
        except ValueError:
            missing.append(want)
    return missing


@dataclass(frozen=True)
class Result:
    block: Block
    returncode: int
    output: str


class Runner:
    """Runs one page's blocks in 'workdir', which gets a link to every
    top-level entry of 'repo', so that pages written for the repository's
    root (`bpf/ratelimit.c`, `.venv/bin/okopy`) run as written while what
    they write stays in 'workdir'."""

    def __init__(self, repo: Path, workdir: Path, env: dict[str, str], timeout: float = 600):
        self.repo = repo
        self.workdir = workdir
        self.timeout = timeout
        self.state = workdir / ".doctest-env"
        for entry in repo.iterdir():
            link = workdir / entry.name
            if not link.exists():
                link.symlink_to(entry)
        # The first block starts from this environment; each block's
        # exports are carried to the next one.
        self.state.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
            + f"cd {shlex.quote(str(workdir))}\n"
        )

    def run(self, block: Block) -> Result:
        if block.directive == "file":
            (self.workdir / block.argument).write_text(block.text)
        if not block.runs:
            return Result(block, 0, "")
        if block.language == "python":
            script = (
                f"source {shlex.quote(str(self.state))}\n"
                f"exec {shlex.quote(sys.executable)} - <<'OKOPY_DOCTEST_EOF'\n"
                f"{block.text}OKOPY_DOCTEST_EOF\n"
            )
        else:
            script = (
                f"source {shlex.quote(str(self.state))}\n"
                "set -eo pipefail\n"
                f"{block.text}\n"
                "set +e\n"
                f'{{ export -p; echo cd "$(printf %q "$PWD")"; }} > '
                f"{shlex.quote(str(self.state))}\n"
            )
        try:
            proc = subprocess.run(
                ["bash", "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else ""
            return Result(block, -1, out + f"\n(timed out after {self.timeout:.0f} s)")
        return Result(block, proc.returncode, proc.stdout)

    def cleanup(self, commands: Sequence[str]) -> None:
        for command in commands:
            subprocess.run(
                ["bash", "-c", f"source {shlex.quote(str(self.state))}\n{command}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                timeout=self.timeout,
                check=False,
            )


def run_page(page: Page, runner: Runner) -> Iterator[str]:
    """Runs 'page' in order; yields a problem for every block that failed
    or printed something other than its output block says.  Stops at the
    first failure (later blocks build on earlier ones); always cleans up."""
    last: Result | None = None
    try:
        for b in page.blocks:
            if b.directive == "output":
                assert last is not None  # parse() checked
                missing = missing_lines(b.text, last.output)
                if missing:
                    yield (f"{b.where}: the output of {last.block.where} lacks "
                           f"{missing[0]!r}; it printed:\n{last.output[-3000:]}")  # fmt: skip
                    return
                continue
            result = runner.run(b)
            if b.runs:
                last = result
            if result.returncode != 0:
                yield (f"{b.where}: {b.language} block failed (exit {result.returncode}):\n"
                       f"{b.text}---\n{result.output[-4000:]}")  # fmt: skip
                return
    finally:
        runner.cleanup(page.cleanup)


def pages(repo: Path) -> list[Path]:
    """README.md and docs/*.md."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def relative(path: Path, repo: Path) -> str:
    return os.path.relpath(path, repo)
