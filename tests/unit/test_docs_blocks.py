"""The documentation harness's reading of pages (okopy.testing.docs), and
every page of the repository read without error."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.testing import docs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", docs.pages(REPO), ids=lambda p: p.name)
def test_every_page_reads(page: Path) -> None:
    parsed = docs.parse(page.read_text(), page.name)
    for b in parsed.blocks:
        if b.language in docs.RUN_LANGUAGES and not b.runs:
            assert b.directive == "skip", b.where
            assert b.argument, b.where


PAGE = """\
# A page

<!-- doctest: file a.c -->
```c
int x;
```

```sh
echo hello
echo world
```
<!-- doctest: output -->
```
world
```

<!-- doctest: skip illustrative -->
```sh
rm -rf /
```

```yaml
not: run
```
<!-- doctest: cleanup echo bye -->
"""


def test_blocks_and_directives() -> None:
    page = docs.parse(PAGE, "p.md")
    assert [(b.line, b.language, b.directive, b.argument, b.runs) for b in page.blocks] == [
        (4, "c", "file", "a.c", False),
        (8, "sh", "", "", True),
        (13, "", "output", "", False),
        (18, "sh", "skip", "illustrative", False),
        (22, "yaml", "", "", False),
    ]
    assert page.blocks[1].text == "echo hello\necho world\n"
    assert page.cleanup == ("echo bye",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- doctest: skip -->\n```sh\nx\n```\n", "skip needs a reason"),
        ("<!-- doctest: file -->\n```c\nx\n```\n", "file needs a file name"),
        ("<!-- doctest: bogus x -->\n```sh\nx\n```\n", "unknown doctest directive 'bogus'"),
        ("<!-- doctest: skip why -->\nsome prose\n```sh\nx\n```\n", "is not followed by a code"),
        ("<!-- doctest: skip why -->\n", "is not followed by a code block"),
        ("```sh\nnever closed\n", "code block never closed"),
        ("<!-- doctest: output -->\n```\nx\n```\n", "must follow a block that runs"),
        ("```c\nx\n```\n<!-- doctest: output -->\n```\nx\n```\n", "must follow a block that runs"),
    ],
)
def test_malformed_pages(text: str, message: str) -> None:
    with pytest.raises(docs.DocError, match=message):
        docs.parse(text, "p.md")


def test_missing_lines() -> None:
    out = "program x (1 insns)\npackets: 5\n  a -> 1\nverdicts: drop 3\n"
    assert docs.missing_lines("packets: 5\n...\nverdicts: drop 3\n", out) == []
    assert docs.missing_lines("  a -> 1  \n", out) == []
    assert docs.missing_lines("verdicts: drop 3\npackets: 5\n", out) == ["packets: 5"]
    assert docs.missing_lines("packets: 6\n", out) == ["packets: 6"]


def test_runner_carries_exports_and_stops_at_a_failure(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "x.txt").write_text("from the repo\n")
    page = docs.parse(
        "```sh\nexport GREETING=hi\nmkdir sub && cd sub\n```\n"
        "```sh\necho $GREETING from $(basename $PWD)\ncat ../data/x.txt\n```\n"
        "<!-- doctest: output -->\n```\nhi from sub\nfrom the repo\n```\n"
        "```python\nprint(6 * 7)\n```\n<!-- doctest: output -->\n```\n42\n```\n"
        "```sh\nfalse\necho not reached\n```\n"
        "```sh\necho never run\n```\n"
        "<!-- doctest: cleanup touch cleaned -->\n",
        "p.md",
    )
    work = tmp_path / "work"
    work.mkdir()
    runner = docs.Runner(repo, work, {"PATH": "/usr/bin:/bin"})
    problems = list(docs.run_page(page, runner))
    assert len(problems) == 1
    assert problems[0].startswith("p.md:21: sh block failed (exit 1)")
    assert "not reached" not in problems[0].split("---\n")[1]  # -e stopped it
    assert (work / "sub" / "cleaned").exists()  # the cleanup ran where the page was


def test_output_mismatch_is_reported(tmp_path: Path) -> None:
    page = docs.parse("```sh\necho 1\n```\n<!-- doctest: output -->\n```\n2\n```\n", "p.md")
    work = tmp_path / "w"
    work.mkdir()
    problems = list(docs.run_page(page, docs.Runner(tmp_path, work, {"PATH": "/usr/bin:/bin"})))
    assert len(problems) == 1
    assert "lacks '2'" in problems[0]
