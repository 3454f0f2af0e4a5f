"""The real Open vSwitch build: a second run is skipped."""

from __future__ import annotations

from okopy.ovs import build
from okopy.ovs.instance import OvsTools
from okopy.paths import Layout


def test_second_build_is_skipped(layout: Layout, ovs_tools: OvsTools) -> None:
    lines: list[str] = []
    result = build.build(layout, log=lines.append)
    assert result.skipped, lines
    assert any("up to date" in line for line in lines)
    assert "openvswitch-source" in lines[0]
