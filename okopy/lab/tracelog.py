"""bpf_trace_printk() output of a switch's programs, read from its log
(`okopy lab tracelog`), as `bpftool prog tracelog` reads the kernel's.

libokovm hands each line to the switch as `BRIDGE: PROGRAM:
bpf_trace_printk: TEXT`, which ovs-vswitchd logs through its `ofproto_bpf`
module at level INFO (rate limited, like the kernel's trace_printk).  Pure:
log text in, trace lines out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

TAG = "bpf_trace_printk: "
_LINE = re.compile(
    r"^(?P<time>\S+)\|\d+\|ofproto_bpf\|INFO\|(?P<bridge>[^:]+): (?P<prog>[^:]+): "
    + re.escape(TAG)
    + r"(?P<text>.*)$"
)


@dataclass(frozen=True)
class TraceLine:
    time: str  # the log's timestamp (UTC)
    bridge: str
    program: str
    text: str

    def __str__(self) -> str:
        return f"{self.time} {self.bridge} {self.program}: {self.text}"


def trace_lines(log: Iterable[str], program: str | None = None) -> Iterator[TraceLine]:
    """The trace lines of 'log' (ovs-vswitchd.log's lines), of 'program'
    (its name) only if given."""
    for line in log:
        m = _LINE.match(line.rstrip("\n"))
        if m and (program is None or m["prog"] == program):
            yield TraceLine(m["time"], m["bridge"], m["prog"], m["text"])
