"""Replay a capture through a policy in a real switch, offline.

`okopy replay` answers "what would this policy do to this traffic" before
the policy is deployed: it starts a private patched ovs-vswitchd whose
ports are all netdev-dummy ports (no privileges, no kernel devices, no
namespaces), applies one switch of the policy to it exactly as the
controller would (the same reconciliation intents, encoded by the same
code), and injects the capture's packets one at a time, in order, through
`netdev-dummy/receive`, so that map state carries over from packet to
packet as on the wire.  After each packet it reads what each port sent
(its options:tx_pcap file) and which programs ran with which verdict (the
change in their statistics), so every packet gets its fate and the reason.

Everything a packet causes happens before the next request is read: the
switch's main thread polls the dummy ports and runs the datapath (upcalls,
recirculation, conntrack) inline, in each pass of its main loop before it
reads OpenFlow and control requests, and the injection waits for the
control socket's answer before it asks OpenFlow for the statistics.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okopy.controller import intents as it
from okopy.controller.openflow import encode
from okopy.controller.reconcile import Observed, reconcile
from okopy.ofp.client import OfClient, OfClientError
from okopy.ofp.messages import VERDICT_CLASSES, ProgStats
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.ovs.unixctl import Unixctl, UnixctlError
from okopy.paths import Layout
from okopy.policy.desired import DesiredSwitch
from okopy.traffic import pcap
from okopy.traffic.summary import summarize

BRIDGE = "br0"
ETH_HEADER_LEN = 14
OFPP_LOCAL = 0xFFFFFFFE
# The largest port number a policy's flows can name (OFPP_MAX).
OFPP_MAX = 0xFFFFFF00


class ReplayError(ValueError):
    """A policy, switch, port or capture that replay cannot use."""


@dataclass(frozen=True)
class Run:
    """One program run that a packet caused."""

    program: str
    verdict: str

    def to_json(self) -> dict[str, str]:
        return {"program": self.program, "verdict": self.verdict}


@dataclass(frozen=True)
class Fate:
    """What became of one packet."""

    number: int  # 1-based, in the capture's order
    summary: str
    # Ports it left by ("2", "LOCAL"), in port order, then "controller" for
    # each packet-in it caused.
    outputs: tuple[str, ...]
    runs: tuple[Run, ...]
    note: str = ""  # why the switch never saw it, if it did not

    @property
    def delivered(self) -> bool:
        return bool(self.outputs)

    def why(self) -> str:
        if self.note:
            return self.note
        return ", ".join(f"{r.program}: {r.verdict}" for r in self.runs) or "no program ran"

    def where(self) -> str:
        return "port " + ", ".join(self.outputs) if self.outputs else "dropped"

    def to_json(self) -> dict[str, Any]:
        out = {
            "packet": self.number,
            "summary": self.summary,
            "delivered": self.delivered,
            "outputs": list(self.outputs),
            "programs": [r.to_json() for r in self.runs],
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Report:
    policy: str
    switch: str
    in_port: int
    fates: list[Fate] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def delivered(self) -> int:
        return sum(f.delivered for f in self.fates)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "switch": self.switch,
            "in_port": self.in_port,
            "packets": len(self.fates),
            "delivered": self.delivered,
            "dropped": len(self.fates) - self.delivered,
            "per_packet": [f.to_json() for f in self.fates],
        }

    def format(self) -> str:
        lines = [f"policy {self.policy}, switch {self.switch}, packets in on port {self.in_port}"]
        for f in self.fates:
            lines.append(f"{f.number:6d}  {f.summary:<48}  {f.where():<12}  ({f.why()})")
        n = len(self.fates)
        lines.append(f"packets: {n}, delivered: {self.delivered}, dropped: {n - self.delivered}")
        lines.append(f"(replayed in {self.seconds:.1f} s)")
        return "\n".join(lines)


def differences(a: Report, b: Report) -> list[tuple[Fate, Fate]]:
    """The packets whose outputs differ between two replays of one capture."""
    return [(x, y) for x, y in zip(a.fates, b.fates, strict=True) if x.outputs != y.outputs]


def format_differences(a: Report, b: Report) -> str:
    diff = differences(a, b)
    lines = [
        f"{len(diff)} of {len(a.fates)} packets fare differently under "
        f"{b.policy} than under {a.policy}"
    ]
    for x, y in diff:
        lines.append(f"{x.number:6d}  {x.summary}")
        lines.append(f"        {a.policy}: {x.where()} ({x.why()})")
        lines.append(f"        {b.policy}: {y.where()} ({y.why()})")
    return "\n".join(lines)


def differences_json(a: Report, b: Report) -> dict[str, Any]:
    return {
        "policy": a.to_json(),
        "against": b.to_json(),
        "differ": [
            {
                "packet": x.number,
                "summary": x.summary,
                "policy": {k: v for k, v in x.to_json().items() if k not in ("packet", "summary")},
                "against": {k: v for k, v in y.to_json().items() if k not in ("packet", "summary")},
            }
            for x, y in differences(a, b)
        ],
    }


def flow_ports(desired: DesiredSwitch) -> set[int]:
    """The port numbers that the switch's flows match or output to."""
    ports: set[int] = set()
    for flow in desired.flows:
        for name, value in flow.match:
            if name == "in_port":
                ports.add(int(value))
        for action in flow.actions:
            kind, _, arg = action.partition(":")
            if kind == "output":
                ports.add(int(arg))
    return ports


def _delta(before: ProgStats | None, after: ProgStats, name: str) -> list[Run]:
    old = before.verdicts if before is not None else (0,) * len(VERDICT_CLASSES)
    runs = []
    for cls, a, b in zip(VERDICT_CLASSES, old, after.verdicts, strict=True):
        runs += [Run(name, cls)] * max(0, b - a)
    return runs


class Replayer:
    """One private switch running one switch of a policy."""

    def __init__(
        self,
        layout: Layout,
        desired: DesiredSwitch,
        in_port: int,
        workdir: Path,
    ) -> None:
        if not 1 <= in_port <= OFPP_MAX:
            raise ReplayError(f"--in-port {in_port}: give a port number from 1 to {OFPP_MAX}")
        self.desired = desired
        self.in_port = in_port
        self.workdir = workdir
        self.names = {p.prog_id: p.name for p in desired.programs.values()}
        self.ports = sorted(flow_ports(desired) | {in_port})
        self.switch = OvsInstance(OvsTools.from_layout(layout), workdir / "ovs", dummy=True)
        self.client: OfClient | None = None
        self.ctl: Unixctl | None = None
        self._pcaps: dict[str, Path] = {}
        self._offsets: dict[str, int] = {}

    # Setup -------------------------------------------------------------------

    def start(self) -> None:
        sw = self.switch.start()
        sw.vsctl(
            "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
            "fail_mode=secure", "protocols=OpenFlow10,OpenFlow13",
            "--", "set", "interface", BRIDGE,
            f"options:tx_pcap={self._pcap_path('LOCAL')}",
        )  # fmt: skip
        for port in self.ports:
            name = f"p{port}"
            sw.vsctl(
                "add-port", BRIDGE, name, "--", "set", "interface", name,
                f"ofport_request={port}", f"options:tx_pcap={self._pcap_path(str(port))}",
            )  # fmt: skip
        for port in self.ports:
            got = sw.vsctl("get", "interface", f"p{port}", "ofport").strip()
            if got != str(port):
                raise ReplayError(f"port {port}: the switch gave it number {got}")
        sw.ofctl("del-flows", BRIDGE)
        self.client = OfClient.bridge(sw.rundir, BRIDGE)
        self.client.enable_packet_ins()
        self.ctl = Unixctl(sw.ctl("ovs-vswitchd"))
        for intent in reconcile(self.desired, Observed()):
            try:
                self.client.send_frames(encode(intent))
            except OfClientError as e:
                raise ReplayError(f"the switch refused {_describe(intent)}: {e}") from None
        for name, path in self._pcaps.items():
            self._offsets[name] = path.stat().st_size if path.exists() else 0

    def _pcap_path(self, port: str) -> Path:
        path = self.workdir / f"tx-{port}.pcap"
        self._pcaps[port] = path
        return path

    def stop(self) -> None:
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        if self.client is not None:
            self.client.close()
            self.client = None
        self.switch.stop()

    # Packets -----------------------------------------------------------------

    def _stats(self) -> dict[int, ProgStats]:
        assert self.client is not None
        return self.client.programs()

    def _sent(self) -> tuple[str, ...]:
        """The ports that sent packets since the last call, once per packet
        sent, in port order (LOCAL last)."""
        outputs: list[str] = []
        for name, path in sorted(self._pcaps.items(), key=lambda kv: _port_order(kv[0])):
            if not path.exists():
                continue
            start = max(self._offsets.get(name, 0), 24)
            if path.stat().st_size <= start:
                continue
            with path.open("rb") as f:
                # The records after the 24-byte header, in the byte order
                # of the header's magic number (the writer's own); only
                # what was appended since the last call is read.
                order = "little" if f.read(4) == b"\xd4\xc3\xb2\xa1" else "big"
                f.seek(start)
                new = f.read()
            pos = 0
            while pos + 16 <= len(new):
                incl = int.from_bytes(new[pos + 8 : pos + 12], order)  # type: ignore[arg-type]
                if pos + 16 + incl > len(new):
                    break  # a record still being written
                pos += 16 + incl
                outputs.append(name)
            self._offsets[name] = start + pos
        return tuple(outputs)

    def replay(
        self,
        packets: Sequence[pcap.Packet],
        pace: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Fate]:
        assert self.ctl is not None
        port = f"p{self.in_port}"
        fates = []
        before = self._stats()
        self._sent()
        t0 = time.monotonic()
        for n, pkt in enumerate(packets, start=1):
            if pace:
                due = (pkt.timestamp_ns - packets[0].timestamp_ns) / 1e9
                wait = due - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
            if len(pkt.data) < ETH_HEADER_LEN:
                # No Ethernet port passes a frame without a whole header on.
                note = f"not injected: {len(pkt.data)} bytes, no whole Ethernet header"
                fates.append(Fate(n, summarize(pkt.data), (), (), note))
                continue
            ins = self.client.packet_ins if self.client is not None else 0
            try:
                self.ctl.call("netdev-dummy/receive", port, pkt.data.hex())
                after = self._stats()
            except (UnixctlError, OfClientError) as e:
                raise ReplayError(
                    f"packet {n}: {e}\nthe switch's log ends with:\n{self.switch.log_tail()}"
                ) from None
            runs: list[Run] = []
            for pid, st in sorted(after.items()):
                runs += _delta(before.get(pid), st, self.names.get(pid, str(pid)))
            before = after
            outputs = self._sent()
            if self.client is not None and self.client.packet_ins > ins:
                # Everything the packet caused precedes the statistics'
                # reply on the connection, its packet-ins included.
                outputs += ("controller",) * (self.client.packet_ins - ins)
            fates.append(Fate(n, summarize(pkt.data), outputs, tuple(runs)))
            if progress is not None:
                progress(n)
        return fates


def _describe(intent: it.Intent) -> str:
    if isinstance(intent, it.LoadProgram):
        return f"program {intent.name} (id {intent.prog_id})"
    if isinstance(intent, it.UpdateMap):
        return f"an entry of map {intent.map} of program {intent.prog_id} (key {intent.key.hex()})"
    if isinstance(intent, it.AddFlow):
        f = intent.flow
        match = ",".join(f"{k}={v}" for k, v in f.match)
        return (
            f"the flow table={f.table},priority={f.priority}{',' if match else ''}{match}"
            f" actions={','.join(f.actions) or 'drop'}"
        )
    return repr(intent)


def _port_order(name: str) -> tuple[int, int]:
    return (1, 0) if name == "LOCAL" else (0, int(name))


def replay(
    layout: Layout,
    desired: DesiredSwitch,
    packets: Sequence[pcap.Packet],
    in_port: int,
    *,
    policy: str = "policy",
    switch: str = "switch",
    pace: bool = False,
) -> Report:
    """Runs 'packets' through 'desired' in a private switch; see the module."""
    report = Report(policy, switch, in_port)
    with tempfile.TemporaryDirectory(prefix="okopy-replay-") as tmp:
        r = Replayer(layout, desired, in_port, Path(tmp))
        try:
            r.start()
            t0 = time.monotonic()
            report.fates = r.replay(packets, pace=pace)
            report.seconds = time.monotonic() - t0
        finally:
            r.stop()
    return report


def read_capture(path: Path) -> list[pcap.Packet]:
    """The capture's packets; ReplayError naming the file if it cannot."""
    try:
        packets = pcap.read(path)
    except OSError as e:
        raise ReplayError(f"{path}: {e.strerror}") from None
    except pcap.PcapError as e:
        raise ReplayError(f"{path}: {e}") from None
    if not packets:
        raise ReplayError(f"{path}: the capture holds no packets")
    return packets
