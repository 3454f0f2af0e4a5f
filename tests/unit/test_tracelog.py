"""bpf_trace_printk() lines read back from ovs-vswitchd's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.cli import main
from okopy.lab.tracelog import TraceLine, trace_lines

LOG = """\
2026-12-06T05:01:02.100Z|00040|bridge|INFO|bridge s1: added interface s1-p1 on port 1
2026-12-06T05:01:02.200Z|00041|ofproto_bpf|INFO|s1: program 'tp' loaded: 47 insns, verified
2026-12-06T05:01:03.001Z|00042|ofproto_bpf|INFO|s1: tp: bpf_trace_printk: udp to port 53
2026-12-06T05:01:03.002Z|00043|ofproto_bpf|INFO|s2: other: bpf_trace_printk: x: y: z
2026-12-06T05:01:03.003Z|00044|ofproto_bpf|WARN|s1: tp: bpf_trace_printk: not a trace line
2026-12-06T05:01:03.004Z|00045|ofproto_bpf|INFO|s1: tp: bpf_trace_printk:\x20
2026-12-06T05:01:03.005Z|00046|ofproto_bpf|INFO|s1: tp: bpf_trace_printk: cut sh
"""


def test_only_trace_lines() -> None:
    got = list(trace_lines(LOG.splitlines(keepends=True)))
    assert got == [
        TraceLine("2026-12-06T05:01:03.001Z", "s1", "tp", "udp to port 53"),
        TraceLine("2026-12-06T05:01:03.002Z", "s2", "other", "x: y: z"),
        TraceLine("2026-12-06T05:01:03.004Z", "s1", "tp", ""),
        TraceLine("2026-12-06T05:01:03.005Z", "s1", "tp", "cut sh"),
    ]
    assert str(got[0]) == "2026-12-06T05:01:03.001Z s1 tp: udp to port 53"


def test_one_program() -> None:
    assert [t.text for t in trace_lines(LOG.splitlines(), "other")] == ["x: y: z"]
    assert list(trace_lines(LOG.splitlines(), "nope")) == []


def test_prog_tracelog_reads_any_switch_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`okopy prog tracelog`: any ovs-vswitchd log, by default the one in
    $OVS_LOGDIR (as after `eval "$(okopy lab env NAME)"`)."""
    (tmp_path / "ovs-vswitchd.log").write_text(LOG)
    assert main(["prog", "tracelog", "--log", str(tmp_path / "ovs-vswitchd.log"),
                 "--prog", "other"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "2026-12-06T05:01:03.002Z s2 other: x: y: z\n"
    monkeypatch.setenv("OVS_LOGDIR", str(tmp_path))
    assert main(["prog", "tracelog"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["prog", "tracelog", "--log", str(tmp_path / "nope.log")]) == 1
    assert "nope.log: No such file or directory" in capsys.readouterr().err
