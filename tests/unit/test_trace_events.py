"""okopy.trace.events: the probes' records, filters, lines and okopy top's
arithmetic, without a switch or a kernel."""

from __future__ import annotations

import pytest

from okopy.ofp.messages import VERDICT_CLASSES
from okopy.trace.events import (
    ALL_VERDICTS,
    CHANGE_EVENT,
    RUN_EVENT,
    SNAP,
    ChangeEvent,
    ProbeCounts,
    Program,
    RunEvent,
    TopState,
    TraceInputError,
    change_line,
    change_record,
    flows_calling,
    histogram_lines,
    host_key,
    parse_ports,
    parse_verdicts,
    percentile,
    render_top,
    resolve_progs,
    run_line,
    run_record,
    top_record,
)
from okopy.traffic.packets import ethernet, tcp4, udp6
from okopy.traffic.summary import ip_headers

pytestmark = pytest.mark.unit

FRAME = tcp4("10.0.0.1", "10.0.0.2", 1234, 80)


def _run_raw(frame: bytes = FRAME, verdict: int = 1, length: int | None = None) -> bytes:
    length = len(frame) if length is None else length
    return RUN_EVENT.pack(5_000_000_000, 150, length, 3, 9, verdict, 2, min(length, SNAP), 1,
                          b"br0", frame[:SNAP])  # fmt: skip


def test_run_event_decodes_what_the_probe_program_writes() -> None:
    ev = RunEvent.decode(_run_raw())
    assert (ev.bridge, ev.prog_id, ev.handle, ev.verdict, ev.in_port) == ("br0", 3, 9, 1, 2)
    assert (ev.run_ns, ev.length, ev.cpu) == (150, len(FRAME), 1)
    assert ev.data == FRAME
    # A long packet carries its first SNAP bytes.
    big = ethernet(0x0800, b"\x45" + bytes(1500))
    assert RunEvent.decode(_run_raw(big)).data == big[:SNAP]
    with pytest.raises(ValueError, match="run record of 10 bytes"):
        RunEvent.decode(bytes(10))


def test_run_record_and_line() -> None:
    prog = Program("br0", 3, "fw", ((0, 0x77), (2, 0)))
    rec = run_record(RunEvent.decode(_run_raw()), prog, 0.0)
    assert (rec["event"], rec["time"]) == ("run", 5.0)
    assert (rec["prog"], rec["verdict"], rec["verdict_code"]) == ("fw", "drop", 1)
    assert (rec["src"], rec["dst"], rec["proto"], rec["sport"], rec["dport"]) == (
        "10.0.0.1", "10.0.0.2", 6, 1234, 80,
    )  # fmt: skip
    assert rec["flows"] == [{"table": 0, "cookie": "0x77"}, {"table": 2, "cookie": "0x0"}]
    line = run_line(RunEvent.decode(_run_raw(verdict=7)), prog, 0.0)
    assert "br0 prog 3 (fw) other(7) in_port=2 10.0.0.1:1234 > 10.0.0.2:80 TCP [S] 150 ns" in line
    assert line.endswith("table=0 cookie=0x77 table=2 cookie=0x0")
    unknown = run_record(RunEvent.decode(_run_raw(b"\x01" * 20, verdict=9)), None, 0.0)
    assert (unknown["prog"], unknown["src"], unknown["verdict"]) == (None, None, "other")
    assert "flows" not in unknown


def test_change_events() -> None:
    raw = CHANGE_EVENT.pack(2_000_000_000, 3, 5, 0, 0, 0, 0, 4, 16, b"br1", b"blocked_v4",
                            bytes([10, 0, 0, 7]), bytes(16))  # fmt: skip
    ev = ChangeEvent.decode(raw)
    assert (ev.kind, ev.bridge, ev.prog_id, ev.name, ev.key) == (
        "map_update", "br1", 5, "blocked_v4", bytes([10, 0, 0, 7]),
    )  # fmt: skip
    rec = change_record(ev, 0.0)
    assert (rec["map"], rec["key"], rec["value"], rec["error"]) == (
        "blocked_v4", "0a000007", "00" * 16, 0,
    )  # fmt: skip
    assert change_line(ev, 0.0).endswith(
        "br1 prog 5 map blocked_v4 update key=0a000007 value=" + "00" * 16
    )
    load = ChangeEvent.decode(CHANGE_EVENT.pack(0, 1, 5, 12, 1, 117, 1, 0, 0, b"br1", b"fw",
                                                b"", b""))  # fmt: skip
    assert change_line(load, 0.0).endswith(
        "prog 5 replaced by 'fw' (117 instructions, native code)"
    )
    assert change_record(load, 0.0) | {"time": 0} == {
        "event": "prog_load", "time": 0, "bridge": "br1", "prog_id": 5, "prog": "fw",
        "replaced": True, "n_insns": 117, "jit": True, "handle": 12,
    }  # fmt: skip
    failed = ChangeEvent.decode(CHANGE_EVENT.pack(0, 4, 5, 0, 2, 0, 0, 4, 0, b"br1", b"m",
                                                  bytes(4), b""))  # fmt: skip
    assert change_line(failed, 0.0).endswith("map m delete key=00000000 failed: error 2")


def test_filters_parse_and_refuse() -> None:
    assert parse_verdicts([]) == ALL_VERDICTS
    assert parse_verdicts(["drop", "pass"]) == 0b110
    assert parse_verdicts(["tx,7"]) == 0b101000  # 7 is "other"
    with pytest.raises(TraceInputError, match="--verdict 'dropped'"):
        parse_verdicts(["dropped"])
    assert host_key("10.0.0.1") == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])
    assert host_key("fd00::1") == bytes.fromhex("fd000000000000000000000000000001")
    with pytest.raises(TraceInputError, match=r"--host '10\.0\.0\.0/24'"):
        host_key("10.0.0.0/24")
    assert parse_ports(["53,80", "443"]) == {53, 80, 443}
    for bad in ("-1", "65536", "http"):
        with pytest.raises(TraceInputError, match=f"--port '{bad}'"):
            parse_ports([bad])


def test_programs_by_name_or_id() -> None:
    progs = [Program("br0", 1, "fw"), Program("br1", 4, "fw"), Program("br0", 2, "rl")]
    assert resolve_progs(["fw"], progs) == {1, 4}
    assert resolve_progs(["rl,9"], progs) == {2, 9}
    with pytest.raises(TraceInputError, match=r"no program of that name \(loaded: fw \(1\)"):
        resolve_progs(["nope"], progs)


def test_flows_calling() -> None:
    dump = (
        " cookie=0x77, duration=1s, table=0, n_packets=0, priority=100,ip "
        "actions=bpf(prog=3,table=1)\n"
        " cookie=0x0, table=1, priority=100,bpf_verdict=pass actions=NORMAL\n"
        " cookie=0x5, table=2, priority=9 actions=bpf(prog=3),bpf(prog=4,drop_unless=pass),NORMAL\n"
        " priority=1 actions=bpf(prog=4)\n"
    )
    assert flows_calling(dump) == {3: [(0, 0x77), (2, 5)], 4: [(2, 5), (0, 0)]}


def test_ip_headers() -> None:
    h = ip_headers(udp6("fd00::1", "fd00::2", 53, 5353))
    assert h is not None
    assert (h.src, h.dst, h.proto, h.sport, h.dport, h.v6) == (
        "fd00::1", "fd00::2", 17, 53, 5353, True,
    )  # fmt: skip
    assert ip_headers(FRAME[:30]) is None  # IPv4 header cut short
    assert ip_headers(ethernet(0x0806, bytes(28))) is None  # ARP


def _probe(counts: dict[tuple[int, int], int], hist: dict[tuple[int, int], int],
           batches: int, skipped: int = 0) -> ProbeCounts:  # fmt: skip
    return ProbeCounts(counts, hist, {9: ("br0", 3)}, {9: batches}, {9: skipped})


def test_top_rates_percentiles_and_screen() -> None:
    state = TopState()
    progs = {("br0", 3): Program("br0", 3, "fw")}
    first = state.advance(_probe({(9, 2): 10}, {(9, 8): 10}, 1), None, progs, 100.0)
    assert first[0].runs_per_sec == 0
    rows = state.advance(
        _probe({(9, 2): 40, (9, 1): 20}, {(9, 8): 30, (9, 12): 40}, 6), None, progs, 102.0
    )
    (row,) = rows
    assert (row.name, row.total_runs, row.runs_per_sec) == ("fw", 60, 25.0)
    assert (row.rates["pass"], row.rates["drop"]) == (15.0, 10.0)
    assert row.hist == {8: 20, 12: 40}
    assert (row.p50_ns, row.p99_ns) == (4096, 4096)
    assert row.per_batch == 10.0  # 50 runs in 5 batches
    assert not row.estimated
    screen = render_top(rows, 2.0)
    assert "br0              3 fw" in screen
    assert screen.splitlines()[1].endswith("/BATCH")
    assert screen.splitlines()[2].endswith("  10.0")
    assert "fw): run time of 60 traced runs" in screen
    assert "estimated" not in screen
    # An interval in which the program did not run: no runs per batch, "-".
    quiet = state.advance(
        _probe({(9, 2): 40, (9, 1): 20}, {(9, 8): 30, (9, 12): 40}, 6), None, progs, 103.0
    )
    assert quiet[0].per_batch is None
    assert render_top(quiet, 1.0).splitlines()[2].endswith("     -")
    assert "2048 -> 4095" in screen
    rec = top_record(rows, 1.0)["programs"][0]
    assert (rec["hist"], rec["runs"]) == ({"128": 20, "2048": 40}, 60)
    assert rec["runs_per_batch"] == 10.0
    assert rec["estimated"] is False


def test_top_scales_traced_runs_by_the_runs_the_switch_skipped() -> None:
    state = TopState()
    progs = {("br0", 3): Program("br0", 3, "fw")}
    state.advance(_probe({}, {}, 0), None, progs, 10.0)
    # 30 pass and 10 drop traced in 4 batches; 360 runs skipped before them.
    (row,) = state.advance(
        _probe({(9, 2): 30, (9, 1): 10}, {(9, 8): 40}, 4, skipped=360), None, progs, 12.0
    )
    assert row.estimated
    assert (row.runs_per_sec, row.rates["pass"], row.rates["drop"]) == (200.0, 150.0, 50.0)
    assert row.total_runs == 400
    assert row.per_batch == 10.0  # of the traced batches
    assert sum(row.hist.values()) == 40  # run times: the traced runs only
    screen = render_top([row], 2.0)
    assert screen.splitlines()[2].split()[3:5] == ["~200", "~150"]
    assert "~ estimated from the traced runs" in screen
    assert top_record([row], 1.0)["programs"][0]["estimated"] is True


def test_top_counts_runs_from_the_switch_where_it_can() -> None:
    state = TopState()
    progs = {("br0", 3): Program("br0", 3, "fw"), ("br0", 4): Program("br0", 4, "idle")}

    def verdicts(**kw: int) -> tuple[int, ...]:
        return tuple(kw.get(c, 0) for c in VERDICT_CLASSES)

    switch = {("br0", 3): verdicts(**{"pass": 1000}), ("br0", 4): verdicts(**{"pass": 5})}
    state.advance(_probe({}, {}, 0), switch, progs, 10.0)
    # The switch ran 500 more (400 pass, 100 drop), traced 20 of them; program
    # 4 did not run: no row.
    switch = {("br0", 3): verdicts(**{"pass": 1400, "drop": 100}),
              ("br0", 4): verdicts(**{"pass": 5})}  # fmt: skip
    (row,) = state.advance(
        _probe({(9, 2): 18, (9, 1): 2}, {(9, 8): 20}, 2, skipped=480), switch, progs, 12.0
    )
    assert (row.prog_id, row.estimated) == (3, False)
    assert (row.runs_per_sec, row.rates["pass"], row.rates["drop"]) == (250.0, 200.0, 50.0)
    assert row.total_runs == 500  # since attaching
    assert sum(row.hist.values()) == 20
    # A program the probe never saw but the switch counts runs for, loaded
    # meanwhile, and a program reloaded under the same id (counters reset).
    switch = {("br0", 3): verdicts(**{"pass": 10}), ("br0", 4): verdicts(**{"pass": 5}),
              ("br0", 7): verdicts(**{"drop": 30})}  # fmt: skip
    rows = state.advance(_probe({(9, 2): 18, (9, 1): 2}, {(9, 8): 20}, 2, 480), switch, progs,
                         13.0)  # fmt: skip
    assert {(r.prog_id, r.runs_per_sec) for r in rows} == {(3, 10.0), (7, 30.0)}


def test_top_percentiles_and_histogram_lines() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({3: 1, 4: 99}, 0.01) == 8  # slot 3: [4, 8)
    assert histogram_lines({1: 2, 3: 4})[1].startswith("         2 -> 3")
    assert "(no program ran)" in render_top([], 1.0)
