"""Reading Open vSwitch's autotest results (okopy/ovs/autotest.py) from
outputs captured off the real suite (data/autotest/capture.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.ovs.autotest import AutotestOutputError, KeywordResult, Summary, parse

DATA = Path(__file__).parent / "data" / "autotest"
DP_BPF = 103  # okopy BPF - programs replaced and unloaded under running threads
NO_BPF_DP = 1388  # ofproto-dpif - bpf action on a datapath without BPF support


def captured(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def numbers(summary: Summary) -> list[int]:
    return [o.number for o in summary.failed]


def test_all_pass_with_skipped_tests() -> None:
    s = parse(captured("pass"))
    assert (s.run, s.skipped, s.passed, s.ok) == (44, 2, 44, True)
    assert {o.where for o in s.outcomes if o.result == "skipped"} == {
        "ovs-ofctl.at:3369",
        "ofproto.at:11",
    }


def test_main_run_failure() -> None:
    s = parse(captured("fail"))
    assert (s.run, s.skipped, s.passed, s.ok) == (44, 2, 43, False)
    assert numbers(s) == [DP_BPF]
    assert s.failed[0].where == "library.at:460"
    assert s.failed[0].name.startswith("103: okopy BPF - programs replaced")


def test_fail_then_pass_on_recheck() -> None:
    r = KeywordResult("okopy", parse(captured("fail")), parse(captured("recheck-pass")), None)
    assert [o.number for o in r.rechecked_ok] == [DP_BPF]
    assert r.failed == ()


def test_fail_twice() -> None:
    main, again = parse(captured("fail-always")), parse(captured("recheck-fail"))
    assert numbers(main) == [DP_BPF, NO_BPF_DP]
    assert (again.run, numbers(again)) == (2, [DP_BPF])
    r = KeywordResult("okopy", main, again, None)
    assert [o.number for o in r.failed] == [DP_BPF]
    assert [o.number for o in r.rechecked_ok] == [NO_BPF_DP]


def test_no_recheck_means_main_failures_stand() -> None:
    r = KeywordResult("okopy", parse(captured("fail")), None, None)
    assert [o.number for o in r.failed] == [DP_BPF]
    assert r.rechecked_ok == ()


@pytest.mark.parametrize("name", ["pass", "fail", "fail-always"])
def test_stream_order_does_not_matter(name: str) -> None:
    # The failure summary goes to standard error, the rest to standard
    # output: reading them one after the other must give the same result.
    text = captured(name)
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "tests were" in line or "test was" in line)
    moved = "".join(lines[start:]) + "".join(lines[:start])
    assert parse(moved) == parse(text)


def test_two_runs_in_one_output_are_refused() -> None:
    # What `make check RECHECK=yes` prints: the old harness read the
    # recheck's "1 test was successful" as the whole result.
    with pytest.raises(AutotestOutputError, match="2 autotest summaries"):
        parse(captured("fail") + captured("recheck-pass"))


def test_output_without_summary_is_refused() -> None:
    with pytest.raises(AutotestOutputError, match="no autotest summary"):
        parse("make: *** No rule to make target 'check'.  Stop.\n")


def test_truncated_output_is_refused() -> None:
    text = captured("pass")
    cut = "\n".join(line for line in text.splitlines() if not line.startswith("103:"))
    with pytest.raises(AutotestOutputError, match=r"46 tests \(44 run, 2 skipped\) but 45 ended"):
        parse(cut)
