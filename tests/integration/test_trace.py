"""`okopy trace` and `okopy top` against the real patched switch, through
the kernel's uprobes: what they report is what the switch's own program
statistics count, filters hold in the kernel, the rate cap accounts for
every run it holds back, and program and map changes are seen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.lab.hosts import Host
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE, HostFactory

ROOT = Path(__file__).resolve().parent.parent.parent
OF13 = ("-O", "OpenFlow13")
OKOPY = [sys.executable, "-m", "okopy"]
ZERO_STATS = "{packets=0,bytes=0}"

pytestmark = pytest.mark.integration


def _bcc_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not Path("/usr/lib/python3/dist-packages/bcc").is_dir():
        return "python3-bpfcc is not installed (scripts/setup)"
    if not Path(f"/lib/modules/{os.uname().release}/build").exists():
        return "no kernel headers for bcc (scripts/setup links them)"
    return None


@pytest.fixture
def net(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path
) -> tuple[OvsInstance, list[Host]]:
    """br0 with h1, h2, h3 (ports 1-3); program 3 "bl" (blocklist.c) with
    h3's address blocked runs on every IPv4 packet from table 0 (cookie
    0x77), and what it passes goes on in table 1."""
    reason = _bcc_usable()
    if reason:
        pytest.skip(reason)
    hosts = [add_host(f"h{i}", f"10.0.0.{i}/24", i) for i in (1, 2, 3)]
    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "blocklist.o")
    switch.ofctl(*OF13, "load-bpf-prog", BRIDGE, "3", str(obj), "name=bl")
    switch.ofctl(*OF13, "update-bpf-map", BRIDGE, "3", "blocked_v4", "10.0.0.3", ZERO_STATS)
    switch.ofctl(*OF13, "del-flows", BRIDGE)
    for flow in (
        "table=0,priority=100,cookie=0x77,ip,actions=bpf(prog=3,table=1)",
        "table=0,priority=0,actions=NORMAL",
        "table=1,priority=100,bpf_verdict=pass,actions=NORMAL",
        "table=1,priority=0,actions=drop",
    ):
        switch.ofctl(*OF13, "add-flow", BRIDGE, flow)
    # Only IPv4 runs the program: h1 and h2 learn each other's addresses
    # by ARP now, and h3's (whose IPv4 packets are dropped) is given them.
    hosts[0].ping("10.0.0.2", count=1)
    mac = hosts[2].ns.run(["cat", "/sys/class/net/eth0/address"]).strip()
    for h in hosts[:2]:
        h.ns.run(["ip", "neigh", "replace", "10.0.0.3", "lladdr", mac, "dev", "eth0"])
    return switch, hosts


def _verdicts(switch: OvsInstance) -> Counter[str]:
    """Program 3's verdict counters, from the switch."""
    dump = switch.ofctl(*OF13, "dump-bpf-progs", BRIDGE)
    line = next(ln for ln in dump.splitlines() if "verdicts:" in ln)
    return Counter({k: int(v) for k, v in (w.split("=") for w in line.split()[1:])})


class Tracer:
    """`okopy ARGS` started in the background; returns once attached."""

    def __init__(self, switch: OvsInstance, *args: str) -> None:
        pid = str(switch.pids["ovs-vswitchd"])
        self.proc = subprocess.Popen(
            [*OKOPY, *args, "--pid", pid], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert "attached" in line, line + self.proc.stderr.read()

    def finish(self, timeout: float = 60) -> tuple[list[dict[str, Any]], str]:
        """Waits for the exit (--count or --duration); the JSON lines."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return [json.loads(line) for line in out.splitlines()], err

    def interrupt(self) -> tuple[list[dict[str, Any]], str]:
        """Ctrl-C, which ends a trace normally."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


def _udp(host: Host, dest: str, sport: int, dport: int, count: int) -> None:
    code = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('', {sport}))\n"
        f"for _ in range({count}): s.sendto(b'x' * 20, ('{dest}', {dport}))"
    )
    host.ns.run(["python3", "-c", code])


def test_every_run_reported_as_the_switch_counts_it(net: tuple[OvsInstance, list[Host]]) -> None:
    switch, (h1, h2, _h3) = net
    before = _verdicts(switch)
    tracer = Tracer(switch, "trace", "--json", "--rate", "0", "--count", "9")
    h1.ping("10.0.0.2", count=3, interval=0.05)  # 3 requests, 3 replies: pass
    h2.ping("10.0.0.3", count=3, interval=0.05)  # 3 requests: drop
    events, _err = tracer.finish()
    runs = [e for e in events if e["event"] == "run"]
    after = _verdicts(switch)

    assert len(runs) == 9, events
    seen = Counter(e["verdict"] for e in runs)
    assert seen == Counter({"pass": 6, "drop": 3})
    assert seen["pass"] == after["pass"] - before["pass"]
    assert seen["drop"] == after["drop"] - before["drop"]
    for e in runs:
        assert (e["bridge"], e["prog_id"], e["prog"]) == (BRIDGE, 3, "bl"), e
        assert e["flows"] == [{"table": 0, "cookie": "0x77"}], e
        assert (e["proto"], e["len"]) == (1, 98), e
        assert e["run_ns"] > 0, e
        if e["verdict"] == "drop":
            assert (e["src"], e["dst"], e["in_port"]) == ("10.0.0.2", "10.0.0.3", 2), e
        else:
            assert {e["src"], e["dst"]} == {"10.0.0.1", "10.0.0.2"}, e
            assert e["in_port"] == (1 if e["src"] == "10.0.0.1" else 2), e


def test_filters_hold_in_the_kernel(net: tuple[OvsInstance, list[Host]]) -> None:
    switch, (h1, h2, _h3) = net
    # Each stops at its count: had its filter let other runs through, the
    # earlier ones would have taken their places.
    drops = Tracer(switch, "trace", "--json", "--rate", "0", "--verdict", "drop",
                   "--host", "10.0.0.3", "--count", "4")  # fmt: skip
    ports = Tracer(switch, "trace", "--json", "--rate", "0", "--port", "5353",
                   "--prog", "bl", "--count", "5")  # fmt: skip
    h1.ping("10.0.0.2", count=2, interval=0.05)  # pass, other hosts
    h1.ping("10.0.0.3", count=2, interval=0.05)  # drop, 10.0.0.3
    _udp(h1, "10.0.0.2", 4000, 5353, 4)  # pass, port 5353
    _udp(h2, "10.0.0.1", 5353, 9, 1)  # pass, from port 5353
    _udp(h1, "10.0.0.3", 4001, 53, 2)  # drop, 10.0.0.3, another port

    shown = [e for e in drops.finish()[0] if e["event"] == "run"]
    assert len(shown) == 4, shown
    assert all(e["verdict"] == "drop" and e["dst"] == "10.0.0.3" for e in shown), shown
    assert Counter(e["proto"] for e in shown) == Counter({1: 2, 17: 2})

    shown = [e for e in ports.finish()[0] if e["event"] == "run"]
    assert len(shown) == 5, shown
    assert all(5353 in (e["sport"], e["dport"]) and e["proto"] == 17 for e in shown), shown
    assert Counter(e["dport"] for e in shown) == Counter({5353: 4, 9: 1})


def test_rate_cap_counts_what_it_holds_back(net: tuple[OvsInstance, list[Host]]) -> None:
    switch, (h1, _h2, _h3) = net
    before = sum(_verdicts(switch).values())
    tracer = Tracer(switch, "trace", "--json", "--rate", "20", "--duration", "4")
    h1.ping("10.0.0.2", count=150, interval=0.005)
    events, _err = tracer.finish()
    runs = sum(_verdicts(switch).values()) - before

    shown = [e for e in events if e["event"] == "run"]
    gaps = [e for e in events if e["event"] == "not_shown"]
    over = sum(e["over_rate_cap"] for e in gaps)
    lost = sum(e["lost"] for e in gaps)
    assert runs == 300
    assert 20 <= len(shown) <= 20 * 6, len(shown)  # at most 20 in any second
    assert over > 0, gaps
    assert all(e["rate_cap"] == 20 for e in gaps), gaps
    assert len(shown) + over + lost == runs


def test_program_and_map_changes(net: tuple[OvsInstance, list[Host]], tmp_path: Path) -> None:
    switch, _hosts = net
    tracer = Tracer(switch, "trace", "--json", "--changes")
    switch.ofctl(*OF13, "update-bpf-map", BRIDGE, "3", "blocked_v4", "10.0.0.7", ZERO_STATS)
    switch.ofctl(*OF13, "del-bpf-map", BRIDGE, "3", "blocked_v4", "10.0.0.7")
    obj = compile_program(ROOT / "bpf/blocklist.c", tmp_path / "again.o")
    switch.ofctl(*OF13, "load-bpf-prog", BRIDGE, "3", str(obj), "name=bl2", "replace")
    switch.ofctl(*OF13, "load-bpf-prog", BRIDGE, "4", str(obj), "name=other")
    switch.ofctl(*OF13, "unload-bpf-prog", BRIDGE, "4")
    time.sleep(1)
    events, _err = tracer.interrupt()

    kinds = [e["event"] for e in events]
    assert kinds == ["map_update", "map_delete", "prog_load", "prog_load", "prog_unload"], events
    update, delete, replace, load, unload = events
    assert (update["map"], update["key"], update["value"]) == ("blocked_v4", "0a000007", "00" * 16)
    assert (update["error"], update["prog_id"], update["bridge"]) == (0, 3, BRIDGE)
    assert (delete["map"], delete["key"], delete["error"]) == ("blocked_v4", "0a000007", 0)
    assert (replace["prog_id"], replace["prog"], replace["replaced"]) == (3, "bl2", True)
    assert replace["n_insns"] > 0
    assert (load["prog_id"], load["prog"], load["replaced"]) == (4, "other", False)
    assert (unload["prog_id"], unload["handle"]) == (4, load["handle"])


def test_top_reports_rates_and_run_times(net: tuple[OvsInstance, list[Host]]) -> None:
    switch, (h1, _h2, _h3) = net
    before = _verdicts(switch)
    top = Tracer(switch, "top", "--json", "--interval", "3", "--count", "1")
    h1.ping("10.0.0.2", count=20, interval=0.02)
    h1.ping("10.0.0.3", count=5, interval=0.02)
    (frame,), _err = top.finish()
    after = _verdicts(switch)

    (row,) = frame["programs"]
    assert (row["bridge"], row["prog_id"], row["prog"]) == (BRIDGE, 3, "bl")
    assert row["runs"] == 45 == sum(after.values()) - sum(before.values())
    rates = row["verdicts_per_sec"]
    assert rates["pass"] == pytest.approx(40 / 3, rel=0.2)
    assert rates["drop"] == pytest.approx(5 / 3, rel=0.2)
    assert sum(row["hist"].values()) == 45
    assert 0 < row["p50_ns"] <= row["p99_ns"]
    assert row["runs_per_batch"] >= 1  # pings come one at a time


def test_switch_traces_at_most_its_trace_rate(net: tuple[OvsInstance, list[Host]]) -> None:
    """At bpf-trace-rate 1, the switch fires the probe for one batch a
    second: the trace shows what it fired for and counts the rest as not
    traced, and top still counts every run, from the switch's program list."""
    switch, (h1, _h2, _h3) = net
    switch.vsctl("set", "Open_vSwitch", ".", "other_config:bpf-trace-rate=1")
    before = sum(_verdicts(switch).values())
    tracer = Tracer(switch, "trace", "--json", "--rate", "0", "--duration", "5")
    top = Tracer(switch, "top", "--json", "--interval", "4", "--count", "1")
    # 20 requests and 20 replies, each a batch of its own: the first is
    # traced.  After a second and more, the next request is traced too, and
    # reports the runs skipped before it; its reply is skipped, and nothing
    # traced after it reports that.
    h1.ping("10.0.0.2", count=20, interval=0.01)
    time.sleep(1.2)
    h1.ping("10.0.0.2", count=1)
    events, _err = tracer.finish()
    (frame,), _err = top.finish()
    runs = sum(_verdicts(switch).values()) - before

    assert runs == 42
    shown = [e for e in events if e["event"] == "run"]
    not_traced = sum(e["not_traced"] for e in events if e["event"] == "not_shown")
    assert len(shown) >= 2, events
    assert not_traced > 0, events
    assert len(shown) + not_traced == runs - 1, events
    assert (shown[-1]["src"], shown[-1]["verdict"]) == ("10.0.0.1", "pass"), shown
    (row,) = frame["programs"]
    assert (row["runs"], row["estimated"]) == (runs, False), row
    assert sum(row["hist"].values()) == len(shown), row


def test_refusals(net: tuple[OvsInstance, list[Host]]) -> None:
    switch, _hosts = net
    pid = str(switch.pids["ovs-vswitchd"])

    def refused(*args: str) -> str:
        proc = subprocess.run([*OKOPY, *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=60, check=False)  # fmt: skip
        assert proc.returncode == 1, proc
        return proc.stderr

    assert "no program of that name (loaded: bl (3))" in refused(
        "trace", "--pid", pid, "--prog", "nosuch"
    )
    assert "not ovs-vswitchd" in refused("trace", "--pid", str(os.getpid()))
    assert "no process" in refused("top", "--pid", "999999999")
    assert "--verdict 'dropped'" in refused("trace", "--pid", pid, "--verdict", "dropped")
    assert "--host '10.0.0'" in refused("trace", "--pid", pid, "--host", "10.0.0")
    assert "--port '70000'" in refused("trace", "--pid", pid, "--port", "70000")
    empty = Path(switch.rundir) / "empty"
    empty.mkdir()
    err = subprocess.run([*OKOPY, "trace"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "OVS_RUNDIR": str(empty)}, check=False).stderr  # fmt: skip
    assert "ovs-vswitchd.pid is missing" in err, err
