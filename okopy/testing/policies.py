"""Policies the integration tests deploy."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def blocklist_policy(blocked_v4: str, one_pass: bool = False) -> str:
    """Switch s1 (dpid 0x1) with bpf/blocklist.c as program 1, 'blocked_v4'
    seeded as blocked, IPv4 through the program (table 1 forwards what it
    passes), everything else forwarded normally.  With 'one_pass', the
    program's action drops what it does not pass (drop_unless) and the same
    flow forwards the rest: no table 1."""
    if one_pass:
        flows = """\
      - {table: 0, priority: 100, match: {eth_type: 0x800},
         actions: [{bpf: {prog: block, drop_unless: pass}}, normal]}
      - {table: 0, priority: 0, actions: [normal]}
"""
    else:
        flows = """\
      - {table: 0, priority: 100, match: {eth_type: 0x800},
         actions: [{bpf: {prog: block, table: 1}}]}
      - {table: 0, priority: 0, actions: [normal]}
      - {table: 1, priority: 100, match: {bpf_verdict: pass}, actions: [normal]}
      - {table: 1, priority: 0, actions: [drop]}
"""
    return f"""\
version: 1
programs:
  block: {{source: {ROOT}/bpf/blocklist.c, id: 1}}
switches:
  s1:
    dpid: 0x1
    programs: [block]
    maps:
      block:
        blocked_v4: [{{key: {blocked_v4}, value: {{}}}}]
    flows:
{flows}"""
