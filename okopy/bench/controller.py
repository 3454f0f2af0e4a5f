"""okopy bench controller: many switches, two controllers.

For each size N: N patched ovs-vswitchd, each in a network namespace of
its own with one bridge, reach the controllers' namespace over a veth
pair each; two `okopy controller` processes of one policy (a template
for all N switches: the blocklist in front of normal forwarding) elect
their master through an etcd of the run's own.  Measured:

- cold start: from starting the controllers to every switch reconciled;
- failover: from SIGKILL of the master to the other having reconciled
  every switch (with nothing to do: no program loaded or flow added
  again, counted in its log);
- meanwhile, through switch 1: pings every 10 ms to an allowed host (lost
  ones) and to a blocked one (answered ones: none may be);
- memory: each ovs-vswitchd's resident set.

The baseline in the same run is N = 1 (one switch: what more switches
cost)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from okopy.bench.common import machine
from okopy.bench.scaling import process_rss
from okopy.lab.controller import ControllerProcess
from okopy.lab.etcd import EtcdProcess
from okopy.lab.hosts import Host, attach_host, parse_ping
from okopy.netns import Namespace, add_veth
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import Layout

ROOT = Path(__file__).resolve().parents[2]
PORTS = (6653, 6654)
BLOCKED = "10.0.0.3"


@dataclass(frozen=True)
class Point:
    switches: int
    cold_start_s: float
    failover_s: float
    reloads_after_failover: int  # program loads and flow adds by the new master
    pings_lost: int  # of the allowed destination, during the failover
    pings_sent: int
    blocked_answered: int  # must be 0
    rss_per_switch_mb: float


def policy(n: int) -> str:
    lines = [
        "version: 1",
        "programs:",
        f"  block: {{source: {ROOT}/bpf/blocklist.c, id: 1}}",
        "templates:",
        "  edge:",
        "    programs: [block]",
        f"    maps: {{block: {{blocked_v4: [{{key: {BLOCKED}, value: {{}}}}]}}}}",
        "    flows:",
        "      - {table: 0, priority: 100, match: {eth_type: 0x800},",
        "         actions: [{bpf: {prog: block, table: 1}}]}",
        "      - {table: 0, priority: 0, actions: [normal]}",
        "      - {table: 1, priority: 100, match: {bpf_verdict: pass}, actions: [normal]}",
        "      - {table: 1, priority: 0, actions: [drop]}",
        "switches:",
    ]
    lines += [f"  s{i}: {{dpid: {i}, template: edge}}" for i in range(1, n + 1)]
    return "\n".join(lines) + "\n"


def _reconciled(log: str, after: int = 0) -> dict[str, str]:
    """dpid -> what the last reconciliation after offset 'after' did."""
    return dict(re.findall(r"switch (0x[0-9a-f]+) reconciled: (.*)", log[after:]))


def _wait(what: str, cond: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not after {timeout} s")
        time.sleep(0.02)
    return time.monotonic()


@contextmanager
def _testbed(
    layout: Layout, n: int, work: Path
) -> Iterator[tuple[Namespace, list[OvsInstance], list[Host]]]:
    """N switches in their namespaces, linked to a controllers' namespace;
    two hosts on switch 1.  Everything is removed at the end."""
    tools = OvsTools.from_layout(layout)
    with ExitStack() as stack:
        ctl_ns = Namespace.create("bcctl")
        stack.callback(ctl_ns.delete)
        switches: list[OvsInstance] = []
        for i in range(1, n + 1):
            ns = Namespace.create(f"bcs{i}")
            stack.callback(ns.delete)
            sw = stack.enter_context(OvsInstance(tools, work / f"s{i}", ns))
            sw.add_bridge("br0")
            sw.vsctl("set", "bridge", "br0", f"other-config:datapath-id={i:016x}",
                     "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
            add_veth(ctl_ns, f"c{i}", ns, "up0")
            ctl_ns.run(["ip", "addr", "add", f"10.{100 + i // 250}.{i % 250}.1/24", "dev",
                        f"c{i}"])  # fmt: skip
            ns.run(["ip", "addr", "add", f"10.{100 + i // 250}.{i % 250}.2/24", "dev", "up0"])
            switches.append(sw)
        hosts = [attach_host(switches[0], "br0", f"bch{j}", f"10.0.0.{j}/24", j)
                 for j in (1, 2, 3)]  # fmt: skip
        for h in hosts:
            stack.callback(h.delete)
        yield ctl_ns, switches, hosts


def measure(layout: Layout, n: int, log: Callable[[str], None]) -> Point:
    work = Path(tempfile.mkdtemp(prefix="okopy-bench-ctl-"))
    try:
        with _testbed(layout, n, work) as (ctl_ns, switches, hosts):
            (work / "policy.yaml").write_text(policy(n))
            etcd = EtcdProcess(work / "etcd", ctl_ns).start()
            ctls = [
                ControllerProcess(work / "policy.yaml", work / f"c{k}.log", ctl_ns, port,
                                  listen_host="0.0.0.0",
                                  extra=["--coordination", etcd.url, "--member", f"c{k}"])
                for k, port in enumerate(PORTS)
            ]  # fmt: skip
            try:
                for i, sw in enumerate(switches, 1):
                    up = f"10.{100 + i // 250}.{i % 250}.1"
                    sw.vsctl("set-controller", "br0", *(f"tcp:{up}:{p}" for p in PORTS))
                start = time.monotonic()
                for c in ctls:
                    c.start()
                done = _wait("cold start", lambda: any(len(_reconciled(c.log())) == n
                                                       for c in ctls), 120)  # fmt: skip
                cold = done - start
                master = next(c for c in ctls if len(_reconciled(c.log())) == n)
                standby = ctls[1 - ctls.index(master)]
                log(f"  {n} switches: cold start {cold:.2f} s")
                h1 = hosts[0]
                mark = len(standby.log())
                allowed = _ping(h1, "10.0.0.2")
                blocked = _ping(h1, BLOCKED)
                time.sleep(0.5)
                assert master.proc is not None
                master.proc.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                done = _wait("failover", lambda: len(_reconciled(standby.log(), mark)) == n, 60)
                fail = done - killed
                after = _reconciled(standby.log(), mark)
                ok = parse_ping(allowed.communicate(timeout=30)[0])
                bad = parse_ping(blocked.communicate(timeout=30)[0])
                lost, sent = ok.sent - ok.received, ok.sent
                rss = sum(process_rss(sw.pids["ovs-vswitchd"]) for sw in switches) / n
                point = Point(n, cold, fail, sum(v != "nothing to do" for v in after.values()),
                              lost, sent, bad.received, rss / 1e6)  # fmt: skip
                log(f"  {n} switches: failover {fail:.2f} s, {point.reloads_after_failover} "
                    f"reconciliations that changed something, {lost}/{sent} allowed pings "
                    f"lost, {point.blocked_answered} blocked answered, "
                    f"{point.rss_per_switch_mb:.1f} MB per switch")  # fmt: skip
                return point
            finally:
                for c in ctls:
                    c.stop()
                etcd.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ping(host: Host, dest: str) -> subprocess.Popen[str]:
    """400 pings, 10 ms apart (4 s: the failover happens in them)."""
    argv = host.ns.argv(["ping", "-n", "-c", "400", "-i", "0.01", "-W", "1", dest])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(
    layout: Layout,
    sizes: Sequence[int] = (1, 10, 25, 50),
    log: Callable[[str], None] = print,
    out_dir: Path | None = None,
) -> list[Point]:
    out_dir = out_dir or ROOT / "docs" / "benchmarks"
    points = []
    for n in sizes:
        log(f"bench controller: {n} switches")
        points.append(measure(layout, n, log))
    data: dict[str, Any] = {"machine": machine(), "points": [asdict(p) for p in points]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "controller.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "controller.md").write_text("\n".join(report(points, data["machine"])) + "\n")
    plot(points, out_dir / "controller.png")
    return points


def report(points: Sequence[Point], where: dict[str, Any]) -> list[str]:
    base = points[0]
    lines = [
        "# Many switches, two controllers",
        "",
        "`okopy bench controller` (okopy/bench/controller.py says how). Each switch is",
        "a patched ovs-vswitchd in its own namespace; two controllers elect their",
        "master through etcd; failover is SIGKILL of the master, with pings every 10 ms",
        "through switch 1 to an allowed and a blocked host meanwhile. One run per size",
        f"(no spread: run it again to see it), on {where['cores']} cores ({where['cpu']}),",
        f"kernel {where['kernel']}, okopy {where['okopy']}. Issue 14's targets: cold start",
        "of 50 switches under 10 s; failover under 3 s, etcd lease included; nothing",
        "loaded or added again; no packet wrongly passed or dropped.",
        "",
        "| switches | cold start (s) | ratio to 1 switch | failover (s) | changed on failover "
        "| allowed pings lost | blocked answered | MB per switch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {p.switches} | {p.cold_start_s:.2f} | {p.cold_start_s / base.cold_start_s:.1f} "
            f"| {p.failover_s:.2f} | {p.reloads_after_failover} | {p.pings_lost}/{p.pings_sent} "
            f"| {p.blocked_answered} | {p.rss_per_switch_mb:.1f} |"
        )
    return lines


def plot(points: Sequence[Point], path: Path) -> None:
    try:
        import matplotlib  # noqa: PLC0415 - optional (the plots extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p.switches for p in points]
    ax.plot(xs, [p.cold_start_s for p in points], "o-", label="cold start")
    ax.plot(xs, [p.failover_s for p in points], "s-", label="failover (SIGKILL of the master)")
    ax.set_xlabel("switches")
    ax.set_ylabel("seconds to every switch reconciled")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
