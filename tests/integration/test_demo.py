"""A shortened demo: legitimate traffic is served while the attack is dropped."""

from __future__ import annotations

import platform

from okopy.lab import demo
from okopy.ovs.instance import OvsTools
from okopy.paths import Layout


def test_short_demo(layout: Layout, ovs_tools: OvsTools) -> None:
    lines: list[str] = []
    result = demo.run(layout, lines.append, duration=6.0, attack_rate=1000)
    text = "\n".join([*lines, *demo.report(result)])
    assert len(result.requests) > 20, text
    assert result.served_fraction >= 0.9, text
    assert result.attack_sent > 2000, text
    assert result.attack_dropped_fraction >= 0.8, text
    assert [p["name"] for p in result.programs] == ["hh", "block", "limit", "synguard"], text
    if platform.machine() == "x86_64":
        assert {p["mode"] for p in result.programs} == {"jit"}, text
        assert " jit " in text, text
    # The two attack sources top the heavy-hitters table, above the client.
    assert {t["key"] for t in result.talkers[:2]} == {"10.0.0.66", "203.0.113.7"}, text
    by_name = {p["name"]: p for p in result.programs}
    assert by_name["block"]["verdicts"]["drop"] > 0, text
    assert by_name["limit"]["verdicts"]["drop"] > 0, text
    assert result.plot is not None, text
    assert result.plot.exists(), text
