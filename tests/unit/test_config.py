"""check-config without the verifiers: building programs, typing seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.policy import build as config
from okopy.policy import file as policy

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples/policy.yaml"


def test_example_policy_builds() -> None:
    checked = config.check(policy.load(EXAMPLE), verify=False)
    assert set(checked.programs) == {"block", "limit"}
    sw = checked.switches["s1"]
    assert sw.dpid == 1
    assert len(sw.flows) == 6
    assert {s.map for s in sw.seeds} == {"blocked_v4", "config"}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text.replace("../bpf/", f"{ROOT}/bpf/"))
    return p


def test_seed_and_source_problems_reported_together(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("rate: 1000", "rat: 1000")
    text = text.replace("blocklist.c", "missing.c")
    with pytest.raises(config.CheckError) as info:
        config.check(policy.load(write(tmp_path, text)), verify=False)
    found = [str(p) for p in info.value.problems]
    assert any(":5:1: program block: No such file" in p for p in found), found


def test_seed_problem_has_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("rate: 1000", "rat: 1000")
    with pytest.raises(config.CheckError) as info:
        config.check(policy.load(write(tmp_path, text)), verify=False)
    (p,) = info.value.problems
    assert p.line == 17
    assert "unknown field 'rat' (fields: rate, burst)" in p.message


def test_compile_error_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("int nope(void) { return missing; }\n")
    text = EXAMPLE.read_text().replace("../bpf/ratelimit.c", str(bad))
    with pytest.raises(config.CheckError, match="program limit: clang failed"):
        config.check(policy.load(write(tmp_path, text)), verify=False)
