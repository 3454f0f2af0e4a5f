"""A three-namespace path for forwarding benchmarks: gen -> fw -> sink.

`gen` blasts UDP with trafgen (packet mmap, not per-packet Python) for a
fixed time; the packets received by `sink` per second are the throughput.
`fw` forwards: routed by the kernel (for iptables / nftables) or switched
by the patched Open vSwitch (for OVS flows and okopy programs).  All
traffic stays inside these namespaces.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

from okopy.netns import Namespace, add_veth, disable_tx_offload

GEN_IP = "10.9.1.1"
SINK_IP_L2 = "10.9.1.2"
SINK_IP_L3 = "10.9.2.1"


class NetPath:
    """gen --g0/f0-- fw --f1/s0-- sink."""

    def __init__(self, mode: Literal["l2", "l3"]) -> None:
        self.mode = mode
        self.gen = Namespace.create("gen")
        try:
            self.fw = Namespace.create("fw")
            self.sink = Namespace.create("sink")
            add_veth(self.gen, "g0", self.fw, "f0")
            add_veth(self.fw, "f1", self.sink, "s0")
            for ns, dev in ((self.gen, "g0"), (self.fw, "f0"), (self.fw, "f1"), (self.sink, "s0")):
                disable_tx_offload(ns, dev)
            self.gen.run(["ip", "addr", "add", f"{GEN_IP}/24", "dev", "g0"])
            if mode == "l3":
                self.fw.run(["ip", "addr", "add", "10.9.1.254/24", "dev", "f0"])
                self.fw.run(["ip", "addr", "add", "10.9.2.254/24", "dev", "f1"])
                self.fw.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
                self.sink.run(["ip", "addr", "add", f"{SINK_IP_L3}/24", "dev", "s0"])
                self.gen.run(["ip", "route", "add", "10.9.2.0/24", "via", "10.9.1.254"])
                self.sink.run(["ip", "route", "add", "10.9.1.0/24", "via", "10.9.2.254"])
            else:
                self.sink.run(["ip", "addr", "add", f"{SINK_IP_L2}/24", "dev", "s0"])
        except BaseException:
            self.delete()
            raise

    @property
    def sink_ip(self) -> str:
        return SINK_IP_L3 if self.mode == "l3" else SINK_IP_L2

    def delete(self) -> None:
        for ns in (getattr(self, n, None) for n in ("gen", "fw", "sink")):
            if ns is not None:
                ns.delete()

    def mac(self, ns: Namespace, dev: str) -> bytes:
        return bytes.fromhex(
            ns.run(["cat", f"/sys/class/net/{dev}/address"]).strip().replace(":", "")
        )

    def resolve(self) -> None:
        """Make ARP settle before blasting (trafgen does not ARP)."""
        self.gen.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", self.sink_ip], check=False)

    def trafgen_config(self) -> str:
        """64-byte-class UDP from gen to sink, one flow."""
        dst_mac = self.mac(self.fw, "f0") if self.mode == "l3" else self.mac(self.sink, "s0")
        return (
            "{\n"
            f"  {_hexes(dst_mac)},\n  {_hexes(self.mac(self.gen, 'g0'))},\n  0x08, 0x00,\n"
            "  0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, csumip(14, 33),\n"
            f"  {_hexes(_ip(GEN_IP))}, {_hexes(_ip(self.sink_ip))},\n"
            "  0x30, 0x39, 0x13, 0x89, 0x00, 0x08, 0x00, 0x00,\n"
            "}\n"
        )

    def tcp_syn_config(self, dst_ip: str, ports: int = 256) -> str:
        """A trafgen configuration of 54-byte TCP SYNs from gen to 'dst_ip'
        (at sink's MAC address: L2 only), cycling over 'ports' source ports
        (at most 256), with correct IP and TCP checksums."""
        if self.mode != "l2" or not 1 <= ports <= 256:
            raise ValueError("TCP SYN floods need an l2 path and 1-256 source ports")
        return (
            "{\n"
            f"  {_hexes(self.mac(self.sink, 's0'))},\n  {_hexes(self.mac(self.gen, 'g0'))},\n"
            "  0x08, 0x00,\n"
            "  0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, csumip(14, 33),\n"
            f"  {_hexes(_ip(GEN_IP))}, {_hexes(_ip(dst_ip))},\n"
            f"  0x40, dinc(0, {ports - 1}, 1), 0x13, 0x89,\n"
            "  0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,\n"
            "  0x50, 0x02, 0xff, 0xff, csumtcp(14, 34), 0x00, 0x00,\n"
            "}\n"
        )

    def rx_packets(self) -> int:
        return int(self.sink.run(["cat", "/sys/class/net/s0/statistics/rx_packets"]).strip())

    def blast(self, seconds: float, config: str | None = None) -> float:
        """Send as fast as trafgen can for 'seconds' (the packet of 'config',
        a trafgen configuration; default trafgen_config()); packets/s that
        arrived."""
        with tempfile.NamedTemporaryFile("w", suffix=".trafgen", delete=False) as f:
            f.write(config or self.trafgen_config())
            conf = f.name
        try:
            before = self.rx_packets()
            start = time.monotonic()
            subprocess.run(
                # -k: trafgen waits on SIGINT for its TX ring to drain, which
                # a veth whose peer runs XDP (an afxdp port) may not do
                # while the switch is starved of CPU; kill it then.
                self.gen.argv(["timeout", "-k", "2", "-s", "INT", str(seconds), "trafgen",
                               "--dev", "g0",
                               "--conf", conf, "-q", "--cpp"]),
                capture_output=True, check=False, timeout=seconds + 30,
            )  # fmt: skip
            elapsed = time.monotonic() - start
            # Let queued packets drain through the forwarder.
            time.sleep(0.3)
            return (self.rx_packets() - before) / elapsed
        finally:
            Path(conf).unlink(missing_ok=True)

    def rtt_ms(self, count: int = 20) -> float:
        out = self.gen.run(
            ["ping", "-n", "-c", str(count), "-i", "0.02", "-W", "1", self.sink_ip], check=False
        )
        rtts = [float(x.split("time=")[1].split()[0]) for x in out.splitlines() if "time=" in x]
        return statistics.median(rtts) if rtts else float("nan")


def _hexes(b: bytes) -> str:
    return ", ".join(f"0x{x:02x}" for x in b)


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))
