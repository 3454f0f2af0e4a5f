"""docs/policy.md against the policy checker: the key tables list exactly
the keys the checker accepts, the match field, action and verdict tables
exactly its names, and every YAML example is accepted, or refused with the
message its `# refused:` line gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from okopy.policy.file import KEYS, MATCH_FIELDS, SIMPLE_ACTIONS, VERDICT_NAMES, PolicyError, parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _sections() -> dict[str, str]:
    """Section title -> its text, for every heading of the page."""
    out: dict[str, str] = {}
    title = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            out[title] = ""
        else:
            out[title] = out.get(title, "") + line + "\n"
    return out


def _rows(text: str) -> list[list[str]]:
    """The rows of the tables in 'text', without header and rule rows."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(cells[0]) <= set("-:") and cells[0] not in (
            "key", "action", "field",
        ):  # fmt: skip
            rows.append(cells)
    return rows


def _names(cells: list[list[str]]) -> list[str]:
    return [re.fullmatch(r"`([^`]+)`", row[0]).group(1) for row in cells]  # type: ignore[union-attr]


def test_every_section_of_the_schema_has_a_key_table() -> None:
    sections = _sections()
    for path, (required, optional) in KEYS.items():
        title = next((t for t in sections if t.startswith(f"`{path}`")), None)
        if path == "":
            title = next((t for t in sections if t.startswith("`` ")), None)
        assert title is not None, f"docs/policy.md has no section `{path}`"
        rows = [r for r in _rows(sections[title]) if r[1] in ("required", "optional")]
        documented = {n: r[1] for n, r in zip(_names(rows), rows, strict=True)}
        want = {k: "required" for k in required} | {k: "optional" for k in optional}
        assert documented == want, f"section `{path}`"


def test_match_fields_actions_and_verdicts_are_the_checkers() -> None:
    sections = _sections()
    assert _names(_rows(sections["Match fields"])) == list(MATCH_FIELDS)
    actions = sections["`switches.NAME.flows[].actions[]`"]
    words = [r for r in _rows(actions) if r[1] not in ("required", "optional")]
    assert _names(words) == list(SIMPLE_ACTIONS)
    named = re.findall(r"`(\w+)`\s+\((\d+)\)", sections["Match fields"])
    assert {n: int(v) for n, v in named} == VERDICT_NAMES


def _examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("text", _examples())
def test_example(text: str) -> None:
    first = text.splitlines()[0]
    if first.startswith("# refused: "):
        with pytest.raises(PolicyError) as e:
            parse(text, "policy.yaml")
        assert first.removeprefix("# refused: ") in str(e.value)
    else:
        parse(text, "policy.yaml")
