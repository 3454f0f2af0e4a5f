"""`okopy demo`: the whole system with real traffic, and a report.

A lab (examples/demo/lab.yaml): a client, an attacker and a web server
behind one patched Open vSwitch, run by the okopy controller with four
filters (examples/demo/policy.yaml).  The client fetches pages for the whole
run; halfway the attacker floods the server with SYNs from its own address
and with UDP from a blocklisted, spoofed one.  The report says how much
legitimate traffic was served and how much of the attack was dropped, lists
the top talkers read from the heavy-hitters map and each program's
statistics, and plots what reached the server per second.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okopy.lab import testbed
from okopy.paths import Layout
from okopy.process import terminate

Log = Any  # Callable[[str], None]

SERVER_IP = "10.0.0.10"
SERVER_PORT = 8080
SPOOFED_SOURCE = "203.0.113.7"
DPID = "0x1"

CLIENT = r"""
import json, sys, time, urllib.request
end = time.monotonic() + float(sys.argv[1])
out = []
t0 = time.monotonic()
while time.monotonic() < end:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(sys.argv[2], timeout=1.0) as r:
            r.read()
        ok = True
    except OSError:
        ok = False
    out.append([start - t0, ok, time.monotonic() - start])
    time.sleep(0.05)
print(json.dumps(out))
"""


@dataclass
class DemoResult:
    duration: float
    requests: list[tuple[float, bool, float]] = field(default_factory=list)
    attack_sent: int = 0
    server_rx: list[tuple[float, int]] = field(default_factory=list)
    talkers: list[dict[str, Any]] = field(default_factory=list)
    programs: list[dict[str, Any]] = field(default_factory=list)
    plot: Path | None = None

    @property
    def served(self) -> int:
        return sum(1 for _, ok, _ in self.requests if ok)

    @property
    def served_fraction(self) -> float:
        return self.served / len(self.requests) if self.requests else 0.0

    @property
    def received_at_server(self) -> int:
        return self.server_rx[-1][1] - self.server_rx[0][1] if len(self.server_rx) > 1 else 0

    @property
    def attack_dropped_fraction(self) -> float:
        """Attack packets that did not reach the server (legitimate packets
        at the server are subtracted: a request is a handful of packets)."""
        if not self.attack_sent:
            return 0.0
        legit = 12 * len(self.requests)  # generous: handshake, request, reply, close
        reached = max(0, self.received_at_server - legit)
        return 1.0 - min(reached, self.attack_sent) / self.attack_sent


def _hping_sent(output: str) -> int:
    m = re.search(r"(\d+) packets transmitted", output)
    return int(m.group(1)) if m else 0


def run_demo(
    layout: Layout, log: Log = print, duration: float = 12.0, attack_rate: int = 2000
) -> int:
    """Run the demo, print the report; 0 if the filters did their job."""
    result = run(layout, log, duration, attack_rate)
    for line in report(result):
        log(line)
    ok = result.served_fraction >= 0.9 and result.attack_dropped_fraction >= 0.8
    log("demo " + ("passed" if ok else "FAILED: see the numbers above"))
    return 0 if ok else 1


def run(layout: Layout, log: Log, duration: float, attack_rate: int) -> DemoResult:
    topo_file = layout.repo / "examples" / "demo" / "lab.yaml"
    topo = testbed.load_topology(topo_file)
    name = "demo"
    the_lab = testbed.Lab(layout, name, log=log)
    if the_lab.exists():
        log("a previous demo lab was left behind: tearing it down first")
        the_lab.down()
    log(f"starting the lab ({topo_file}): switch, 3 hosts, controller with 4 filters")
    the_lab.up(topo)
    server = None
    try:
        result = DemoResult(duration)
        progs = _ctl_json(the_lab, ["prog", "list", "--dpid", DPID, "--json"])
        if len(progs) != 4:
            raise testbed.LabError(f"expected 4 programs on the switch, found {len(progs)}")
        log("programs loaded: " + ", ".join(f"{p['id']} {p['name']}" for p in progs))
        server_host = the_lab.host("server")
        server = subprocess.Popen(
            server_host.ns.argv([sys.executable, "-m", "http.server", str(SERVER_PORT),
                                 "--bind", SERVER_IP]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_http(the_lab)
        log(f"legitimate traffic for {duration:.0f} s; the attack starts after "
            f"{duration / 4:.0f} s and lasts about {duration / 2:.0f} s")  # fmt: skip
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rx, args=(the_lab, result, stop), daemon=True)
        sampler.start()
        url = f"http://{SERVER_IP}:{SERVER_PORT}/"
        client = subprocess.Popen(
            the_lab.host("client").ns.argv([sys.executable, "-c", CLIENT, str(duration), url]),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(duration / 4)
        sent: list[int] = []
        attack = threading.Thread(
            target=lambda: sent.append(_attack(the_lab, attack_rate, duration / 2)), daemon=True
        )
        attack.start()
        # The talkers table holds each source's count in the current window,
        # which grows from zero at every window boundary: read it while the
        # attack lasts and keep each source's peak.
        result.talkers = _peak_talkers(the_lab, attack, deadline=duration * 4 + 60)
        attack.join(timeout=duration * 4 + 60)
        result.attack_sent = sent[0] if sent else 0
        out, _ = client.communicate(timeout=duration + 30)
        stop.set()
        sampler.join(timeout=5)
        result.requests = [(float(t), bool(ok), float(lat)) for t, ok, lat in json.loads(out)]
        result.programs = _ctl_json(the_lab, ["prog", "list", "--dpid", DPID, "--json"])
        result.plot = _plot(result, layout.build / "demo" / "throughput.png")
        return result
    finally:
        if server is not None:
            terminate(server.pid)
        the_lab.down()


def _peak_talkers(the_lab: testbed.Lab, attack: threading.Thread, deadline: float) -> list[Any]:
    """Samples the heavy-hitters 'talkers' map until 'attack' ends (at most
    'deadline' seconds); returns the five sources with the highest count seen
    in one window, loudest first."""
    peak: dict[str, Any] = {}
    end = time.monotonic() + deadline
    while attack.is_alive() and time.monotonic() < end:
        for entry in _ctl_json(the_lab, ["map", "dump", "--dpid", DPID, "1", "talkers"]):
            best = peak.get(entry["key"])
            if best is None or int(entry["value"]["estimate"]) > int(best["value"]["estimate"]):
                peak[entry["key"]] = entry
        time.sleep(0.1)
    return sorted(peak.values(), key=lambda e: -int(e["value"]["estimate"]))[:5]


def _ctl_json(the_lab: testbed.Lab, argv: list[str]) -> Any:
    proc = subprocess.run(the_lab.ctl_argv(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise testbed.LabError(f"okopy {' '.join(argv)}: {proc.stderr.strip() or proc.stdout}")
    return json.loads(proc.stdout)


def _wait_http(the_lab: testbed.Lab, timeout: float = 20.0) -> None:
    client = the_lab.host("client")
    deadline = time.monotonic() + timeout
    probe = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1).read()"
    while time.monotonic() < deadline:
        proc = subprocess.run(
            client.ns.argv([sys.executable, "-c", probe, f"http://{SERVER_IP}:{SERVER_PORT}/"]),
            capture_output=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise testbed.LabError(f"the web server did not answer within {timeout:.0f} s")


def _sample_rx(the_lab: testbed.Lab, result: DemoResult, stop: threading.Event) -> None:
    server = the_lab.host("server")
    t0 = time.monotonic()
    while not stop.is_set():
        out = server.ns.run(["cat", "/sys/class/net/eth0/statistics/rx_packets"], check=False)
        if out.strip().isdigit():
            result.server_rx.append((time.monotonic() - t0, int(out)))
        stop.wait(0.5)


def _attack(the_lab: testbed.Lab, rate: int, seconds: float) -> int:
    """A SYN flood from the attacker's address and a UDP flood from a spoofed,
    blocklisted one; bounded in count and rate.  Returns packets sent."""
    attacker = the_lab.host("attacker")
    syn_count, udp_count = int(rate * seconds), int(rate / 2 * seconds)
    syn = attacker.ns.popen(["hping3", "-q", "-S", "-p", str(SERVER_PORT), "-i",
                             f"u{1_000_000 // rate}", "-c", str(syn_count), SERVER_IP])  # fmt: skip
    udp = attacker.ns.popen(["hping3", "-q", "--udp", "-a", SPOOFED_SOURCE, "-p", "53", "-i",
                             f"u{2_000_000 // rate}", "-c", str(udp_count), SERVER_IP])  # fmt: skip
    sent = 0
    for proc in (syn, udp):
        out, _ = proc.communicate(timeout=seconds * 4 + 30)
        sent += _hping_sent(out)
    return sent


def _plot(result: DemoResult, path: Path) -> Path | None:
    try:
        import matplotlib  # noqa: PLC0415 - only the demo needs it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = [t for t, _ in result.server_rx[1:]]
    rates = [
        (b - a) / max(tb - ta, 1e-6)
        for (ta, a), (tb, b) in zip(result.server_rx, result.server_rx[1:], strict=False)
    ]
    ax.plot(xs, rates, label="packets/s reaching the server")
    ax.set_xlabel("seconds")
    ax.set_ylabel("packets/s")
    ax2 = ax.twinx()
    buckets: dict[int, int] = {}
    for t, ok, _ in result.requests:
        if ok:
            buckets[int(t)] = buckets.get(int(t), 0) + 1
    ax2.bar(list(buckets), list(buckets.values()), alpha=0.3, color="green",
            label="legitimate requests served/s")  # fmt: skip
    ax2.set_ylabel("requests/s")
    ax.set_title(f"okopy demo: {result.attack_sent} attack packets sent")
    fig.legend(loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def report(r: DemoResult) -> list[str]:
    lat = [lat for _, ok, lat in r.requests if ok]
    med = f"{statistics.median(lat) * 1000:.1f} ms" if lat else "n/a"
    lines = [
        "",
        "okopy demo report",
        f"  legitimate requests: {len(r.requests)} sent, {r.served} served "
        f"({100 * r.served_fraction:.1f}%), median latency {med}",
        f"  attack: {r.attack_sent} packets sent (SYN flood from 10.0.0.66, UDP from "
        f"spoofed {SPOOFED_SOURCE}); {r.received_at_server} packets of all kinds reached "
        f"the server: {100 * r.attack_dropped_fraction:.1f}% of the attack dropped",
        "  top talkers during the attack (heavy_hitters map, most packets seen in one 1-s window):",
    ]
    for t in r.talkers:
        lines.append(f"    {t['key']:<16} {t['value']['estimate']}")
    lines.append("  programs:")
    lines.append(f"    {'id':>3} {'name':<12} {'runs as':<11} {'runs':>9} {'pass':>9} "
                 f"{'drop':>9} {'ns/run':>7}")  # fmt: skip
    for p in r.programs:
        v = p["verdicts"]
        per = p["run_nsec"] / p["runs"] if p["runs"] else 0
        lines.append(f"    {p['id']:>3} {p['name']:<12} {p.get('mode', '?'):<11} {p['runs']:>9} "
                     f"{v['pass']:>9} {v['drop']:>9} {per:>7.0f}")  # fmt: skip
    if r.plot:
        lines.append(f"  plot: {r.plot}")
    lines.append("")
    return lines
