"""check-config with the verifiers: an unsafe program in a policy is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.cli import main
from okopy.policy import build as config
from okopy.policy import file as policy

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_is_ok(kernel_bpf: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "examples/policy.yaml")]) == 0
    assert "examples/policy.yaml: OK" in capsys.readouterr().out


def test_unsafe_program_is_refused(kernel_bpf: None, tmp_path: Path) -> None:
    text = (ROOT / "examples/policy.yaml").read_text()
    text = text.replace("../bpf/ratelimit.c", str(ROOT / "tests/progs/unsafe/null_map_value.c"))
    text = text.replace("../bpf/", f"{ROOT}/bpf/")
    text = text.replace(
        "      limit:\n        config:\n          - {key: 0, value: {rate: 1000, burst: 100}}\n",
        "",
    )
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(config.CheckError) as info:
        config.check(policy.load(p))
    (problem,) = info.value.problems
    assert problem.line == 6
    assert "program limit:" in problem.message
    assert "map_value_or_null" in problem.message
