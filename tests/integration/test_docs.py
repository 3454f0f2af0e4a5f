"""Every command block of README.md and docs/*.md runs as written, in order
(okopy.testing.docs): `sh` blocks in bash, `python` blocks in the project's
Python, files written where a page says so, printed output checked where a
page shows it.  Blocks that do not run say why (`<!-- doctest: skip ... -->`).

Each page runs in a fresh directory that links the repository's top-level
entries, as a user at the repository's root, with the project's virtualenv
first on PATH (README's setup)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from okopy.ovs.instance import OvsTools
from okopy.paths import Layout
from okopy.testing import docs

REPO = Path(__file__).resolve().parents[2]
PAGES = [p for p in docs.pages(REPO) if any(b.runs for b in docs.parse(p.read_text()).blocks)]


@pytest.mark.parametrize("page", PAGES, ids=[docs.relative(p, REPO) for p in PAGES])
def test_page_runs_as_written(
    page: Path, layout: Layout, ovs_tools: OvsTools, tmp_path: Path
) -> None:
    parsed = docs.parse(page.read_text(), docs.relative(page, REPO))
    env = dict(os.environ)
    env["PATH"] = f"{layout.repo / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    runner = docs.Runner(layout.repo, tmp_path, env)
    problems = list(docs.run_page(parsed, runner))
    assert not problems, "\n".join(problems)
